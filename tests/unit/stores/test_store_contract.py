"""The VectorStore contract (shipped in mmserve.testing.store_contract), run on the built-in
stores as a store plugin runs it: by subclassing the contract classes and giving them the
``store`` fixture. The milvus plugin runs them from its own folder (test_milvus_plugin.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mmserve.stores import VectorStore, open_store_at
from mmserve.testing.store_contract import (
    BrowsingContract,
    ImagesOnRequestContract,
    VectorStoreContract,
)

pytestmark = pytest.mark.unit


class TestMemoryStore(VectorStoreContract, BrowsingContract, ImagesOnRequestContract):
    @pytest.fixture
    def store(self) -> Iterator[VectorStore]:
        opened = open_store_at("memory")
        yield opened
        opened.close()


class TestLanceDBStore(VectorStoreContract, BrowsingContract, ImagesOnRequestContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[VectorStore]:
        opened = open_store_at("lancedb", str(tmp_path / "store"))
        yield opened
        opened.close()
