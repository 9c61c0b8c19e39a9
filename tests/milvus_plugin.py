"""The mmserve-milvus store plugin (plugins/mmserve-milvus) for the tests that use it.

It is installed for real (``pip --target``, entry point included, once per test run:
plugin_site.py) into a folder that a subprocess gets on its ``PYTHONPATH``: the CLI tests,
and the plugin's own test suite (plugins/mmserve-milvus/tests, run by
tests/unit/stores/test_milvus_plugin.py). In this process, :func:`import_plugin` uses the
installed package when there is one, else loads it from its source folder as a package of
its own (sys.path is left alone). pymilvus and milvus-lite come from the test extra.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

from plugin_site import installed

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "plugins" / "mmserve-milvus"


def import_plugin() -> None:
    """Register the ``milvus`` store kind in this process."""
    if "mmserve_milvus" in sys.modules or importlib.util.find_spec("mmserve_milvus"):
        importlib.import_module("mmserve_milvus")  # installed: importing registers the store
        return
    package = PLUGIN / "src" / "mmserve_milvus"
    spec = importlib.util.spec_from_file_location(
        "mmserve_milvus", package / "__init__.py", submodule_search_locations=[str(package)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mmserve_milvus"] = module
    spec.loader.exec_module(module)  # registers the store (by import path, in this package)


def install_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site folder (for ``PYTHONPATH``) holding the installed package."""
    return installed(PLUGIN, tmp_path_factory)
