"""Training: pretraining data, the Accelerate pretraining script and the README's main job."""
