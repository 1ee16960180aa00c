"""medface phenotype plugin: facial gestalt screening for genetic conditions."""

__version__ = "0.1.0"
