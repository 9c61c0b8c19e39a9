"""The interface the workflow engine uses to call models, whatever hosts them.

Models are addressed by their *name* in the app config (``models:`` keys). Each call is
batched and returns a :class:`Batched` carrying the results and the size of the batch the
items actually rode in (in served mode, Serve's dynamic batching may merge requests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from mmserve.models.base import Answer, EmbeddingSpace, Role, Vectors

if TYPE_CHECKING:
    from PIL.Image import Image

T = TypeVar("T")


@dataclass(frozen=True)
class Batched(Generic[T]):
    """Results of one batched call, in input order, and the batch size they rode in."""

    items: list[T]
    batch_size: int


class ModelGateway(Protocol):
    """Calls models by config name. Implementations must be safe to use concurrently."""

    def model_for(self, role: Role, name: str | None = None) -> str:
        """The config name of the model to use for ``role``: ``name`` if given (checked to
        serve that role), else the role's default. Raises ModelNotConfiguredError."""
        ...

    def models(self) -> dict[str, Role]:
        """Every configured model name and its role."""
        ...

    async def space(self, model: str) -> EmbeddingSpace:
        """The embedding space of an encoder model."""
        ...

    async def embed_images(self, model: str, images: Sequence[Image]) -> Batched[Vectors]:
        """Unit-norm vectors, one row per image (``items`` holds one (dim,) array each)."""
        ...

    async def embed_texts(self, model: str, texts: Sequence[str]) -> Batched[Vectors]: ...

    async def caption(
        self, model: str, images: Sequence[Image], prompts: Sequence[str | None] | None = None
    ) -> Batched[str]: ...

    async def answer(
        self, model: str, images: Sequence[Image], questions: Sequence[str]
    ) -> Batched[Answer]: ...


__all__ = ["Batched", "ModelGateway"]
