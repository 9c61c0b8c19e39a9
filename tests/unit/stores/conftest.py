"""Fixtures for the store tests: every test runs against each built-in store, and against the
``milvus`` plugin (plugins/mmserve-milvus) on Milvus Lite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from milvus_plugin import import_plugin
from mmserve.stores import VectorStore, open_store_at

_LOCATIONS = {"memory": "store", "lancedb": "store", "milvus": "store.db"}


@pytest.fixture(params=["memory", "lancedb", "milvus"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    if request.param == "milvus":
        import_plugin()
    opened = open_store_at(request.param, str(tmp_path / _LOCATIONS[request.param]))
    yield opened
    opened.close()
