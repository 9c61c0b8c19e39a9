"""An example mmserve step plugin with side effects (see README.md)."""
