"""An embedding space names its weights, not where they happen to lie (issue: spaces keyed by
absolute folder paths refused the same weights served from another folder)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mmserve.errors import EmbeddingSpaceMismatchError
from mmserve.models.identity import model_identity
from mmserve.models.spec import EmbeddingSpace
from mmserve.stores import Item, Payload, open_store_at

pytestmark = pytest.mark.unit


def _weights_folder(path: Path, weights: bytes = b"\x01" * 3_000_000) -> Path:
    (path / "tokenizer").mkdir(parents=True)
    (path / "config.json").write_text('{"projection_dim": 4}', encoding="utf-8")
    (path / "tokenizer" / "vocab.txt").write_text("a\nb\n", encoding="utf-8")
    (path / "model.safetensors").write_bytes(weights)
    return path


def test_the_same_weights_in_two_folders_are_one_space(tmp_path: Path) -> None:
    laptop = _weights_folder(tmp_path / "laptop" / "clip")
    server = tmp_path / "srv" / "models" / "clip-copy"
    shutil.copytree(laptop, server)
    assert model_identity(str(laptop)) == model_identity(str(server))
    assert model_identity(str(laptop)).startswith("folder:")
    other = _weights_folder(tmp_path / "other", weights=b"\x02" * 3_000_000)
    assert model_identity(str(other)) != model_identity(str(laptop))
    # a changed tokenizer is other vectors too
    (server / "tokenizer" / "vocab.txt").write_text("a\nc\n", encoding="utf-8")
    assert model_identity(str(server)) != model_identity(str(laptop))


def test_a_hub_revision_is_part_of_the_space() -> None:
    assert model_identity("openai/clip-vit-base-patch32") == "openai/clip-vit-base-patch32"
    pinned = model_identity("openai/clip-vit-base-patch32", "abc123")
    assert pinned == "openai/clip-vit-base-patch32@abc123"
    assert model_identity("openai/clip-vit-base-patch32", "def456") != pinned
    assert model_identity("tiny://clip", "x") == "tiny://clip"


def test_collections_recorded_with_a_folder_path_accept_the_same_weights(tmp_path: Path) -> None:
    folder = _weights_folder(tmp_path / "clip")
    legacy = EmbeddingSpace(backend="clip", model_id=str(folder), dim=4)
    store = open_store_at("memory")
    store.create_collection("old", space=legacy, modality="text")
    copy = shutil.copytree(folder, tmp_path / "elsewhere")
    current = EmbeddingSpace(backend="clip", model_id=model_identity(str(copy)), dim=4)
    vector = np.array([1, 0, 0, 0], dtype=np.float32)
    store.upsert("old", [Item(id="a", vector=vector, payload=Payload(text="a"))], space=current)
    assert [m.id for m in store.search("old", vector, space=current)] == ["a"]
    other = _weights_folder(tmp_path / "other", weights=b"\x03" * 10)
    with pytest.raises(EmbeddingSpaceMismatchError):
        store.search(
            "old", vector, space=current.model_copy(update={"model_id": model_identity(str(other))})
        )
