"""Synthetic bench tasks shaped like published test-time-scaling curves (see README.md); every file
here but the README is written by `generate.py`."""
