"""Model, tokenizer and dataset cards, and Hub upload helpers."""
