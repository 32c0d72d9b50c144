"""SLUE sentiment and NER data (the `asapp/slue` schema) and the offline espeak-ng stand-in."""
