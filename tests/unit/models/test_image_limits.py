"""Sizes and steps a diffusion model entry refuses are refused by every gateway before the
model is loaded or called, with the error the backend itself raises."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from PIL import Image

from mmserve.config import AppConfig
from mmserve.errors import InputError, InputTooLargeError
from mmserve.gateway.local import LocalGateway
from mmserve.models.image_limits import check_edit_item, check_generate_item
from mmserve.models.roles.images import EditItem, GenerateItem
from mmserve.models.spec import ModelSpec

pytestmark = pytest.mark.unit

CONFIG = {
    "models": {
        "image_generator": {
            "backend": "diffusion",
            "source": "tiny://stable-diffusion",
            "max_pixels": 64 * 64,
            "max_steps": 2,
        },
        "image_editor": {
            "backend": "instruct-pix2pix",
            "source": "tiny://instruct-pix2pix",
            "max_steps": 2,
        },
    },
    "store": {"kind": "memory"},
    "workflows": [],
}

BAD = [
    ("generate", GenerateItem(prompt="x", width=60, height=64, steps=1), InputError, "got 60x64"),
    ("generate", GenerateItem(prompt="x", width=64, height=4, steps=1), InputError, "of 8"),
    ("generate", GenerateItem(prompt="x", width=128, height=64), InputTooLargeError, "max_pixels"),
    ("generate", GenerateItem(prompt="x", width=64, height=64, steps=3), InputError, "max_steps"),
    (
        "edit",
        EditItem(image=Image.new("RGB", (70, 4)), instruction="x", steps=1),
        InputError,
        "the image is 70x4; this model needs at least 8 pixels each way",
    ),
    (
        "edit",
        EditItem(image=Image.new("RGB", (70, 45)), instruction="x", steps=3),
        InputError,
        "steps=3 is over this model's limit of 2 (max_steps)",
    ),
]
MODEL = {"generate": "image_generator", "edit": "image_editor"}


class Unreachable:
    """A deployment handle (or anything) that fails the test when used at all."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the model was reached ({name}) for an item it must refuse")


@pytest.mark.parametrize(("method", "item", "error", "message"), BAD)
def test_the_local_gateway_refuses_before_loading(
    method: str, item: Any, error: type[Exception], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def load(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the model was loaded for an item it must refuse")

    monkeypatch.setattr("mmserve.gateway.local.load_backend", load)
    gateway = LocalGateway(AppConfig.from_dict(CONFIG))
    with pytest.raises(error, match=re.escape(message)):
        asyncio.run(gateway.call(MODEL[method], method, item))
    with pytest.raises(error, match=re.escape(message)):
        asyncio.run(gateway.call_batch(MODEL[method], method, [item]))


@pytest.mark.parametrize(("method", "item", "error", "message"), BAD)
def test_the_served_gateways_refuse_before_calling_a_replica(
    method: str, item: Any, error: type[Exception], message: str
) -> None:
    from mmserve.serve.handles import HandleGateway
    from mmserve.serve.in_ingress import PlacedGateway

    config = AppConfig.from_dict(CONFIG)
    remote = HandleGateway(config, dict.fromkeys(config.models, Unreachable()))  # type: ignore[arg-type]
    placed = PlacedGateway(config, remote, dict.fromkeys(config.models, Unreachable()))  # type: ignore[arg-type]
    for gateway in (remote, placed):
        with pytest.raises(error, match=re.escape(message)):
            asyncio.run(gateway.call(MODEL[method], method, item))
        with pytest.raises(error, match=re.escape(message)):
            asyncio.run(gateway.call_batch(MODEL[method], method, [item]))


def test_items_within_the_limits_pass_and_the_backends_declare_the_same_checks() -> None:
    from mmserve.models.backends.diffusion import InstructPix2PixBackend, TextToImageBackend

    spec = ModelSpec(source="tiny://stable-diffusion", max_pixels=64 * 64, max_steps=2)
    check_generate_item(spec, "generate", GenerateItem(prompt="x", width=64, height=40, steps=2))
    edit = EditItem(image=Image.new("RGB", (70, 45)), instruction="x", steps=2)
    check_edit_item(spec, "edit", edit)  # comes back 64x40: within 64x64
    assert TextToImageBackend.check_item is check_generate_item
    assert InstructPix2PixBackend.check_item is check_edit_item
