"""Training the unit vocoder: its data and its Accelerate script."""
