"""What the ``index`` and ``retrieve`` steps share: reaching the store, picking the encoder.

A collection records the embedding space its vectors live in, so the encoder for a query or
for new items is not a free choice: it is the configured model of the needed role (text or
image encoder) whose space *is* the collection's space. With a joint space (CLIP) a text
encoder can query an image collection and the other way round.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from mmserve.errors import (
    CollectionNotFoundError,
    EmbeddingSpaceMismatchError,
    ModelNotConfiguredError,
    StoreError,
)
from mmserve.gateway.contract import ModelGateway
from mmserve.stores.async_store import AsyncVectorStore, as_async_store
from mmserve.stores.contract import Collection, Modality, VectorStore, same_space

T = TypeVar("T")

ENCODER_ROLE: dict[Modality, str] = {"text": "text_encoder", "image": "image_encoder"}


def require_store(store: Any) -> AsyncVectorStore:
    """The run's store, awaitable (see :func:`as_async_store`), or a clear error when the
    app config has none."""
    if store is None:
        raise StoreError(
            "this step needs a vector store, and none is configured",
            hint="add `store: {kind: lancedb, path: ...}` to the app config",
        )
    return as_async_store(store)


async def blocking(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking call off the event loop (store calls go through ``require_store``)."""
    return await asyncio.to_thread(func, *args, **kwargs)


async def find_collection(store: VectorStore | AsyncVectorStore, name: str) -> Collection | None:
    try:
        return await as_async_store(store).get_collection(name)
    except CollectionNotFoundError:
        return None


def _candidates(gateway: ModelGateway, role: str) -> list[str]:
    """Models serving ``role``, the role's default first."""
    names = [name for name, served in gateway.models().items() if served == role]
    try:
        default = gateway.model_for(role)
    except ModelNotConfiguredError:
        return sorted(names)
    return [default, *sorted(n for n in names if n != default)]


async def encoder_for(
    gateway: ModelGateway, collection: Collection, modality: Modality, model: str | None = None
) -> str:
    """The configured encoder for ``modality`` whose space is ``collection``'s space.

    An explicit ``model`` is used as given (the store then refuses it if its space differs);
    otherwise the role's default is tried first, then every other encoder of that role.
    """
    role = ENCODER_ROLE[modality]
    if model is not None:
        return gateway.model_for(role, model)
    candidates = _candidates(gateway, role)
    if not candidates:
        gateway.model_for(role)  # raises ModelNotConfiguredError with the fix
    spaces = []
    for name in candidates:
        space = await gateway.space(name)
        if same_space(collection.space, space):
            return name
        spaces.append(f"{name} ({space})")
    raise EmbeddingSpaceMismatchError(
        left=f"collection {collection.name!r} ({collection.space})",
        right=f"every configured {role}: {', '.join(spaces)}",
        hint=f"configure a {role} with the model the collection was built with, "
        "or index into a new collection",
    )


__all__ = [
    "ENCODER_ROLE",
    "blocking",
    "encoder_for",
    "find_collection",
    "require_store",
]
