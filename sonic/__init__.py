"""Sonic: environmental-sound classification and conditional generation on log-mel spectrograms."""

__version__ = "0.1.0"
