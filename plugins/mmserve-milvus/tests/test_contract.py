"""The store contract mmserve ships (mmserve.testing.store_contract), on Milvus Lite."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from mmserve.stores import VectorStore, open_store_at
from mmserve.testing.store_contract import (
    BrowsingContract,
    ImagesOnRequestContract,
    VectorStoreContract,
)


class TestMilvusStore(VectorStoreContract, BrowsingContract, ImagesOnRequestContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[VectorStore]:
        opened = open_store_at("milvus", str(tmp_path / "store.db"))
        yield opened
        opened.close()
