"""Browsing on the store replica's class, which answers a caller's mistake as a value (no
Ray). What a browsable store does is the contract's BrowsingContract (test_store_contract.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mmserve.errors import ItemNotFoundError
from mmserve.serve.store_server import Refused, StoreServer
from mmserve.testing.store_contract import SPACE, image_items

pytestmark = pytest.mark.unit


def test_the_store_replica_answers_unknown_items_as_refusals(tmp_path: Path) -> None:
    async def browse() -> tuple[object, object]:
        server = StoreServer("lancedb", str(tmp_path), {})
        await server.create_collection("pics", space=SPACE, modality="image")
        await server.upsert("pics", image_items(2), space=SPACE)
        page = await server.list_items("pics", offset=1, limit=5)
        return page, await server.get_item("pics", "nope")

    page, missing = asyncio.run(browse())
    assert isinstance(page, list) and [i.id for i in page] == ["i1"]
    assert isinstance(missing, Refused) and isinstance(missing.error, ItemNotFoundError)
