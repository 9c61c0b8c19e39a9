"""An example mmserve step plugin (see README.md)."""
