"""A weight-free ModelGateway for the store-step tests.

``clip`` embeds texts and images into one joint 3-d space by colour: a text naming a colour
and an image of that colour get the same vector. ``words`` is a text-only encoder of
another space. Vectors are unit-norm, as the contract requires.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL.Image import Image

from mmserve.gateway.contract import Batched, Called
from mmserve.models.spec import EmbeddingSpace

COLOURS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0)}
JOINT = EmbeddingSpace(backend="fake", model_id="fake://joint", dim=3)
WORDS = EmbeddingSpace(backend="fake", model_id="fake://words", dim=3)


def _unit(values: Sequence[float]) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32) + 1e-3
    return vector / np.linalg.norm(vector)


def text_vector(text: str) -> np.ndarray:
    weights = [sum(text.lower().count(name) for name in [c]) for c in COLOURS]
    return _unit([float(w) for w in weights])


def image_vector(image: Image) -> np.ndarray:
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32).reshape(-1, 3).mean(axis=0)
    return _unit(pixels.tolist())


class FakeGateway:
    """Models: image_encoder + text_encoder (joint space), words (text, other space)."""

    def __init__(self, *, with_image_encoder: bool = True) -> None:
        self._models: dict[str, str] = {"text_encoder": "text_encoder", "words": "text_encoder"}
        if with_image_encoder:
            self._models["image_encoder"] = "image_encoder"
        self.calls: list[tuple[str, int]] = []

    def model_for(self, role: str, name: str | None = None) -> str:
        from mmserve.errors import ModelNotConfiguredError

        if name is not None:
            if self._models.get(name) != role:
                raise ModelNotConfiguredError(f"no {role} named {name!r}")
            return name
        if role in self._models:
            return role
        raise ModelNotConfiguredError(f"the config has no model for the role {role!r}")

    def models(self) -> dict[str, str]:
        return dict(self._models)

    async def space(self, model: str) -> EmbeddingSpace:
        return WORDS if model == "words" else JOINT

    async def call(self, model: str, method: str, item: Any) -> Called[Any]:
        batched = await self.call_batch(model, method, [item])
        return Called(batched.items[0], batched.batch_size)

    async def call_batch(self, model: str, method: str, items: Sequence[Any]) -> Batched[Any]:
        self.calls.append((model, len(items)))
        if method == "embed_images":
            return Batched([image_vector(i) for i in items], len(items))
        if method == "embed_texts":
            if model == "words":  # a different space: rotate the joint vector
                return Batched([np.roll(text_vector(t), 1) for t in items], len(items))
            return Batched([text_vector(t) for t in items], len(items))
        raise NotImplementedError(f"{method} is not needed by these tests")
