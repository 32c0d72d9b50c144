"""Word alignments: words with times, readers for files made elsewhere, and the aligners."""
