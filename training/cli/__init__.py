"""The `lst` command: one module per subcommand, each parsing its arguments and dispatching to a library job."""
