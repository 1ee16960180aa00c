"""medface surgery plugin: craniomaxillofacial surgery planning."""

__version__ = "0.1.0"
