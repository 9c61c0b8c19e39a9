"""mmserve: a plugin-based multimodal workflow server on Ray Serve."""

__version__ = "0.1.0"
