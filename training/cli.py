"""The `lst` command: one entry point, a subcommand per job (`lst eval`, `lst units`, `lst corpus`, `lst data`)."""

from __future__ import annotations

import argparse
import logging

from evaluation import cli as evaluation_cli
from tokenization import cli as front_end_cli
from training import data_cli


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="lst", description="Joint speech-unit / text language modelling.")
    subcommands = parser.add_subparsers(dest="command", required=True)
    evaluation_cli.add_parser(subcommands)
    front_end_cli.add_parsers(subcommands)
    data_cli.add_parser(subcommands)
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    arguments.run(arguments)


if __name__ == "__main__":
    main()
