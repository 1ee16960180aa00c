"""medface forensic plugin: skull-to-face reconstruction."""

__version__ = "0.1.0"
