"""Training the CTC aligner's head (`lst aligner train`)."""
