"""ChainChat's one shared package: subjects, schemas, errors, formats and the Merkle log."""

__version__ = "0.1.0"
