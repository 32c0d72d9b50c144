"""Training: pretraining data, Accelerate scripts and the README's demo."""
