"""Local mode opens the configured store only when a step first reaches for it: a run that
never touches the store never opens it; one that does sees the app's one store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mmserve.config import AppConfig
from mmserve.errors import CollectionNotFoundError
from mmserve.local import mode
from mmserve.local.mode import LocalApp
from mmserve.stores import Item, Payload

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
FAKE = {"backend": "fake", "source": "fake://"}
IMAGE = Image.new("RGB", (8, 8), (200, 30, 30))


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The stores local mode opens, in order."""
    stores: list[Any] = []
    real = mode.open_configured_store

    def counting(config: AppConfig) -> Any:
        stores.append(real(config))
        return stores[-1]

    monkeypatch.setattr(mode, "open_configured_store", counting)
    return stores


def _app() -> LocalApp:
    models = {role: FAKE for role in ("image_encoder", "text_encoder", "captioner")}
    data = {"models": models, "store": {"kind": "memory"}, "workflows": [str(ROOT / "workflows")]}
    return LocalApp(AppConfig.from_dict(data))


def test_a_run_that_never_touches_the_store_never_opens_it(opened: list[Any]) -> None:
    app = _app()
    result = asyncio.run(app.run("caption", {"image": IMAGE}))
    assert isinstance(result.outputs["caption"], str)
    assert opened == []


def test_a_run_that_uses_the_store_opens_it_once_and_sees_the_apps_store(
    opened: list[Any],
) -> None:
    app = _app()
    with pytest.raises(CollectionNotFoundError):  # retrieve's check ahead opens the store
        asyncio.run(app.run("caption_then_retrieve", {"image": IMAGE}))
    assert len(opened) == 1 and app.store is opened[0]
    space = asyncio.run(app.gateway.space("text_encoder"))
    app.store.create_collection("captions", space=space, modality="text")
    vector = np.ones(space.dim, dtype=np.float32) / np.sqrt(space.dim)
    item = Item(id="only", vector=vector, payload=Payload(text="put here by the test"))
    app.store.upsert("captions", [item], space=space)
    result = asyncio.run(app.run("caption_then_retrieve", {"image": IMAGE}))
    assert [match.payload.text for match in result.outputs["matches"]] == ["put here by the test"]
    assert len(opened) == 1
