"""Spoken corpora as `datasets` rows: sharded unit extraction of audio files, espeak-ng corpora, built-in text."""
