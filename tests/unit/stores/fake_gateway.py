"""A weight-free ModelGateway for the store-step tests.

``clip`` embeds texts and images into one joint 3-d space by colour: a text naming a colour
and an image of that colour get the same vector. ``words`` is a text-only encoder of
another space. Vectors are unit-norm, as the contract requires.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL.Image import Image

from mmserve.gateway.base import Batched
from mmserve.models.base import Answer, EmbeddingSpace, Role

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
        self._models: dict[str, Role] = {"text_encoder": "text_encoder", "words": "text_encoder"}
        if with_image_encoder:
            self._models["image_encoder"] = "image_encoder"
        self.calls: list[tuple[str, int]] = []

    def model_for(self, role: Role, name: str | None = None) -> str:
        from mmserve.errors import ModelNotConfiguredError

        if name is not None:
            if self._models.get(name) != role:
                raise ModelNotConfiguredError(f"no {role} named {name!r}")
            return name
        if role in self._models:
            return role
        raise ModelNotConfiguredError(f"the config has no model for the role {role!r}")

    def models(self) -> dict[str, Role]:
        return dict(self._models)

    async def space(self, model: str) -> EmbeddingSpace:
        return WORDS if model == "words" else JOINT

    async def embed_images(self, model: str, images: Sequence[Image]) -> Batched[np.ndarray]:
        self.calls.append((model, len(images)))
        return Batched([image_vector(i) for i in images], len(images))

    async def embed_texts(self, model: str, texts: Sequence[str]) -> Batched[np.ndarray]:
        self.calls.append((model, len(texts)))
        if model == "words":  # a different space: rotate the joint vector
            return Batched([np.roll(text_vector(t), 1) for t in texts], len(texts))
        return Batched([text_vector(t) for t in texts], len(texts))

    async def caption(
        self, model: str, images: Sequence[Image], prompts: Sequence[str | None] | None = None
    ) -> Batched[str]:
        raise NotImplementedError("not needed by these tests")

    async def answer(
        self, model: str, images: Sequence[Image], questions: Sequence[str]
    ) -> Batched[Answer]:
        raise NotImplementedError("not needed by these tests")
