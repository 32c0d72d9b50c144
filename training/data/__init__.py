"""Pretraining data: the papers' formats, `datasets` pipelines, mixtures, recipes, packing and batches."""
