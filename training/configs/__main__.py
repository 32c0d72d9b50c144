"""`python -m lst_speech.training.configs NAME` prints where the shipped config NAME is, for `--config_file`."""

import sys

from lst_speech.training.configs import CONFIGS, config_path

if len(sys.argv) != 2:
    sys.exit(f"usage: python -m lst_speech.training.configs NAME, with NAME one of {CONFIGS}")
print(config_path(sys.argv[1]))
