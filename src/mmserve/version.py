"""The version of mmserve, written here once: the package metadata (pyproject.toml's dynamic
``version``), ``mmserve --version``, the API's OpenAPI document and the spans read it."""

__version__ = "0.1.0"
