"""The interface the workflow engine uses to call models, whatever hosts them.

Models are addressed by their *name* in the app config (``models:`` keys) and called by the
name of a method of their role (see :mod:`mmserve.models.roles`): ``call`` sends one item,
``call_batch`` a list (ingest). Each result comes with the size of the batch it rode in (in
served mode, Serve's dynamic batching merges the items of concurrent calls).

Quick start (inside a step's ``run``)::

    model = ctx.gateway.model_for("captioner", inputs.model)
    called = ctx.record(await ctx.gateway.call(model, "caption", CaptionItem(image=image)))
    called.value        # the caption
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from mmserve.models.spec import EmbeddingSpace

T = TypeVar("T")


@dataclass(frozen=True)
class Called(Generic[T]):
    """The result of one item, the size of the batch it rode in and the replica that ran it
    (``"local"`` in process)."""

    value: T
    batch_size: int
    replica: str = "local"


@dataclass(frozen=True)
class Batched(Generic[T]):
    """Results of a list of items, in input order, and the largest batch they rode in."""

    items: list[T]
    batch_size: int


class ModelGateway(Protocol):
    """Calls models by config name. Implementations must be safe to use concurrently."""

    def model_for(self, role: str, name: str | None = None) -> str:
        """The config name of the model to use for ``role``: ``name`` if given (checked to
        serve that role), else the role's default. Raises ModelNotConfiguredError."""
        ...

    def models(self) -> dict[str, str]:
        """Every configured model name and its role."""
        ...

    async def space(self, model: str) -> EmbeddingSpace:
        """The embedding space of an encoder model (one whose backend has a ``space``)."""
        ...

    async def call(self, model: str, method: str, item: Any) -> Called[Any]:
        """Run ``method`` of the model's role on one item. Raises ModelNotConfiguredError for
        an unknown model or a method its role does not have."""
        ...

    async def call_batch(self, model: str, method: str, items: Sequence[Any]) -> Batched[Any]:
        """Run ``method`` on every item (one result each, in order)."""
        ...


class WrappedGateway:
    """A gateway over another that passes everything on: subclasses override what they add
    to (``call``, ``call_batch``). Attributes beyond the protocol (``config``, ``image_input``,
    ...) are read from the wrapped gateway too, so wrappers stack without hiding them."""

    def __init__(self, inner: ModelGateway) -> None:
        self.inner = inner

    def model_for(self, role: str, name: str | None = None) -> str:
        return self.inner.model_for(role, name)

    def models(self) -> dict[str, str]:
        return self.inner.models()

    async def space(self, model: str) -> EmbeddingSpace:
        return await self.inner.space(model)

    async def call(self, model: str, method: str, item: Any) -> Called[Any]:
        return await self.inner.call(model, method, item)

    async def call_batch(self, model: str, method: str, items: Sequence[Any]) -> Batched[Any]:
        return await self.inner.call_batch(model, method, items)

    def __getattr__(self, name: str) -> Any:
        # only called for what this wrapper lacks; never for dunders or before ``inner`` is set
        if name.startswith("__") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


__all__ = ["Batched", "Called", "ModelGateway", "WrappedGateway"]
