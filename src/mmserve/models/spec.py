"""The contract between model backends and the rest of mmserve.

Lifecycle of a backend (a ``model`` plugin):

1. ``Backend(spec)`` -- the constructor resolves ``spec.source`` and loads weights *once*.
   Hugging Face backends (:class:`mmserve.models.hf.HuggingFaceBackend`) take a hub id, a
   local folder, ``tiny://...``, ``random://...`` or ``pkg://...`` and load through
   ``from_pretrained`` with ``trust_remote_code`` off. It picks CUDA with half
   precision when present, else CPU float32 (``spec.device`` / ``spec.dtype`` override).
2. The role methods are then called many times, always batched: a list of items in, a list
   of results out, in the same order. They are synchronous and may block; callers run them
   off the event loop. ``check_source(spec)`` (a classmethod) says beforehand, fast and
   without loading, whether ``spec.source`` can be loaded at all. An optional
   ``check_item(spec, method, item)`` (a classmethod or staticmethod) refuses, from the spec
   alone, an item the backend would refuse (the diffusion backends: a size or step count over
   the entry's limits); every gateway asks it before the model is loaded or called.

A backend declares the roles it serves in ``roles`` (any registered role names); one backend
may serve several (CLIP serves both ``image_encoder`` and ``text_encoder`` from one set of
weights).

Quick start::

    from mmserve.models.spec import ModelSpec
    from mmserve.registry import registry
    Clip = registry.get("model", "clip")
    clip = Clip(ModelSpec(source="tiny://clip"))
    vectors = clip.embed_texts(["a cat", "a dog"])   # (2, dim) float32, unit-norm rows
"""

from __future__ import annotations

from typing import ClassVar, Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

#: A role's name: any registered ``role`` plugin (see :mod:`mmserve.models.roles`).
Role = str

#: A batch of embeddings: shape (N, dim), float32, each row of unit L2 norm.
Vectors = npt.NDArray[np.float32]

Device = Literal["auto", "cpu", "cuda"]
DType = Literal["auto", "float32", "float16", "bfloat16"]


class EndpointSpec(BaseModel):
    """How to talk to a remote model endpoint (the ``openai`` backend): the model's name
    there, the environment variable holding its API key, how long to wait for an answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        min_length=1, description="The model's name at the endpoint (the request's `model`)."
    )
    api_key_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of the environment variable holding the endpoint's API key (sent "
        "as `Authorization: Bearer`); never the key itself. None: no key is sent.",
    )
    timeout_s: float = Field(
        default=120.0, gt=0, le=3600, description="Longest wait for one answer, in seconds."
    )


class ModelSpec(BaseModel):
    """What a backend needs to load one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(
        description="Hub id (e.g. 'openai/clip-vit-base-patch32'), local folder, "
        "'tiny://<arch>', 'random://<arch>' or 'pkg://<python_package>/<subfolder>'; "
        "for the 'openai' backend the endpoint's base URL (e.g. 'http://host:8000/v1')."
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
    endpoint: EndpointSpec | None = Field(
        default=None,
        description="Remote backends (`openai`): the model's name at the endpoint, the API "
        "key's environment variable, the timeout.",
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
    """Every model plugin: built from a :class:`ModelSpec`, serving ``roles``.

    For each method of each role in ``roles`` (see :mod:`mmserve.models.roles`) the backend
    has a method of that name taking a list of items and returning a list of results, same
    order (an encoder may return a (N, dim) array: one row per item).
    """

    roles: ClassVar[frozenset[str]]
    spec: ModelSpec

    def __init__(self, spec: ModelSpec) -> None: ...

    @classmethod
    def check_source(cls, spec: ModelSpec) -> None:
        """Fail fast (ModelLoadError with a hint) when ``spec.source`` cannot be loaded.

        Called by loading and by the ``mmserve serve`` preflight, on the caller's machine;
        must not load weights. Each backend decides what its source means (a hub id, a
        folder, a URL, a name, nothing)."""
        ...


__all__ = [
    "Answer",
    "DType",
    "Device",
    "EmbeddingSpace",
    "EndpointSpec",
    "ModelBackend",
    "ModelSpec",
    "Role",
    "Vectors",
]
