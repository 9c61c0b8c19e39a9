"""A collection indexed with weights in one folder is searchable with the same weights loaded
from another folder (a laptop's index, a server's copy of the model)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mmserve.models.backends.clip import ClipBackend
from mmserve.models.spec import ModelSpec
from mmserve.stores import Item, Payload, open_store_at

pytestmark = pytest.mark.integration


def test_the_same_clip_weights_from_another_folder_search_its_collection(
    tiny_folder: Callable[[str], Path], tmp_path: Path
) -> None:
    laptop = shutil.copytree(tiny_folder("clip"), tmp_path / "laptop" / "clip")
    server = shutil.copytree(laptop, tmp_path / "server" / "models" / "clip")
    indexer = ClipBackend(ModelSpec(source=str(laptop)))
    searcher = ClipBackend(ModelSpec(source=str(server)))
    assert indexer.space == searcher.space
    assert str(tmp_path) not in indexer.space.model_id

    store = open_store_at("lancedb", str(tmp_path / "store"))
    store.create_collection("notes", space=indexer.space, modality="text")
    vectors = indexer.embed_texts(["a red car", "a blue boat"])
    items = [
        Item(id=f"t{n}", vector=v, payload=Payload(text=f"{n}")) for n, v in enumerate(vectors)
    ]
    store.upsert("notes", items, space=indexer.space)
    [query] = searcher.embed_texts(["a red car"])
    assert store.search("notes", query, space=searcher.space, top_k=1)[0].id == "t0"
