"""Integration tier: tiny:// models in process, no Ray.

Every tiny model is built once per test session into a fresh cache folder (``MMSERVE_CACHE``),
so the tests never depend on, or write to, the user's ``~/.cache/mmserve``. Subprocesses
started by the tests inherit the variable and reuse the same builds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's model cache folder (set as MMSERVE_CACHE for the whole session)."""
    folder = tmp_path_factory.mktemp("mmserve-cache")
    previous = os.environ.get("MMSERVE_CACHE")
    os.environ["MMSERVE_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("MMSERVE_CACHE", None)
    else:
        os.environ["MMSERVE_CACHE"] = previous


@pytest.fixture(scope="session")
def tiny_folder(tiny_cache: Path) -> Callable[[str], Path]:
    """``tiny_folder(arch)``: the built folder of ``tiny://<arch>`` (built on first use)."""
    from mmserve.models.sources.tiny import tiny_model_path

    def folder(arch: str) -> Path:
        return tiny_model_path(arch)

    return folder
