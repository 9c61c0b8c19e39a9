"""Fixtures for the store tests: every test runs against each built-in store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mmserve.stores import VectorStore, open_store_at


@pytest.fixture(params=["memory", "lancedb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    opened = open_store_at(request.param, str(tmp_path / "store"))
    yield opened
    opened.close()
