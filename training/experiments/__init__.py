"""The main job, `lst experiment` and the transfer matrix, with their reports."""
