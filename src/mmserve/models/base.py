"""The contract between model backends and the rest of mmserve.

Lifecycle of a backend (a ``model`` plugin):

1. ``Backend(spec)`` -- the constructor resolves ``spec.source`` (a hub id, a local folder,
   ``tiny://...``, ``random://...`` or ``pkg://...``) and loads weights *once*, through
   Hugging Face ``from_pretrained`` with ``trust_remote_code`` off. It picks CUDA with half
   precision when present, else CPU float32 (``spec.device`` / ``spec.dtype`` override).
2. The role methods are then called many times, always batched: a list in, a list out, in
   the same order. They are synchronous and may block; callers run them off the event loop.

A backend declares the roles it serves in ``roles``; one backend may serve several (CLIP
serves both ``image_encoder`` and ``text_encoder`` from one set of weights).

Quick start::

    from mmserve.models.base import ModelSpec
    from mmserve.registry import registry
    Clip = registry.get("model", "clip")
    clip = Clip(ModelSpec(source="tiny://clip"))
    vectors = clip.embed_texts(["a cat", "a dog"])   # (2, dim) float32, unit-norm rows
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol, get_args, runtime_checkable

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from PIL.Image import Image

Role = Literal["image_encoder", "text_encoder", "captioner", "vqa"]
ROLES: tuple[Role, ...] = get_args(Role)

#: A batch of embeddings: shape (N, dim), float32, each row of unit L2 norm.
Vectors = npt.NDArray[np.float32]

Device = Literal["auto", "cpu", "cuda"]
DType = Literal["auto", "float32", "float16", "bfloat16"]


class ModelSpec(BaseModel):
    """What a backend needs to load one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(
        description="Hub id (e.g. 'openai/clip-vit-base-patch32'), local folder, "
        "'tiny://<arch>', 'random://<arch>' or 'pkg://<python_package>/<subfolder>'."
    )
    device: Device = Field(default="auto", description="'auto' picks CUDA when present.")
    dtype: DType = Field(
        default="auto", description="'auto' is float16 on CUDA and float32 on CPU."
    )
    revision: str | None = Field(default=None, description="Hub revision (branch, tag, sha).")
    max_new_tokens: int = Field(
        default=30, ge=1, le=512, description="Generation length for captioning and VQA."
    )
    max_pixels: int = Field(
        default=1024 * 1024,
        ge=1,
        description="Image generators and editors: the largest image (width x height) one "
        "request may ask for.",
    )
    max_steps: int = Field(
        default=50,
        ge=1,
        description="Image generators and editors: the most denoising steps one request may "
        "ask for.",
    )


class EmbeddingSpace(BaseModel):
    """The space a vector lives in. Vectors of different spaces are never compared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str = Field(description="Model plugin name, e.g. 'clip' or 'sentence'.")
    model_id: str = Field(description="The model source the vectors came from.")
    dim: int = Field(ge=1, description="Vector dimension.")

    def __str__(self) -> str:
        return f"{self.backend}:{self.model_id}:{self.dim}"


class Answer(BaseModel):
    """One VQA answer."""

    model_config = ConfigDict(extra="forbid")

    text: str
    score: float | None = Field(
        default=None, description="Model confidence in [0, 1] where the model gives one."
    )


class ModelBackend(Protocol):
    """Every model plugin: built from a :class:`ModelSpec`, serving ``roles``."""

    roles: ClassVar[frozenset[Role]]
    spec: ModelSpec

    def __init__(self, spec: ModelSpec) -> None: ...


@runtime_checkable
class ImageEncoder(Protocol):
    @property
    def space(self) -> EmbeddingSpace: ...

    def embed_images(self, images: Sequence[Image]) -> Vectors: ...


@runtime_checkable
class TextEncoder(Protocol):
    @property
    def space(self) -> EmbeddingSpace: ...

    def embed_texts(self, texts: Sequence[str]) -> Vectors: ...


@runtime_checkable
class Captioner(Protocol):
    def caption(
        self, images: Sequence[Image], prompts: Sequence[str | None] | None = None
    ) -> list[str]: ...


@runtime_checkable
class VqaModel(Protocol):
    def answer(self, images: Sequence[Image], questions: Sequence[str]) -> list[Answer]: ...


ROLE_PROTOCOLS: dict[Role, type] = {
    "image_encoder": ImageEncoder,
    "text_encoder": TextEncoder,
    "captioner": Captioner,
    "vqa": VqaModel,
}

__all__ = [
    "ROLES",
    "ROLE_PROTOCOLS",
    "Answer",
    "Captioner",
    "DType",
    "Device",
    "EmbeddingSpace",
    "ImageEncoder",
    "ModelBackend",
    "ModelSpec",
    "Role",
    "TextEncoder",
    "Vectors",
    "VqaModel",
]
