"""The store's calls, written once: their names, whether each reads or writes, and how each
is run on a store plugin.

:data:`STORE_CALLS` is the table every layer that forwards store calls derives its methods
from: the engine's thread-pool wrapper (:class:`~mmserve.stores.async_store.AsyncStore`),
the store replica (:class:`~mmserve.serve.store_server.StoreServer`) and the client the
ingress replicas use (:class:`~mmserve.serve.store_server.StoreClient`). Each of them
subclasses :class:`StoreCalls`, which has one coroutine method per entry, forwarding to the
subclass's ``_dispatch(call, args, kwargs)``. A new store method is one entry here (and its
signature in :class:`~mmserve.stores.contract.VectorStore` and
:class:`~mmserve.stores.async_store.AsyncVectorStore`); nothing else changes.

:func:`invoke` runs one call on a synchronous store, honouring what the store declares
(:func:`~mmserve.stores.contract.capabilities_of`): a search leaves the images out itself
when the store cannot, browsing a store that cannot browse raises
:class:`~mmserve.errors.StoreFeatureMissingError` (HTTP 501).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mmserve.models.spec import EmbeddingSpace
from mmserve.stores.browse import get_store_item, list_store_items
from mmserve.stores.contract import Match, Vector, VectorStore, leaves_images_out

#: ``read``: any replica may answer (the readers, when the app runs them); ``lookup``: a read
#: whose answer decides what is written next (an ingest's id lookups), so it goes to the
#: writer; ``write``: serialised on the one writer.
CallKind = Literal["read", "lookup", "write"]


@dataclass(frozen=True)
class StoreCall:
    """One store call as every forwarding layer sees it."""

    name: str
    kind: CallKind
    #: Whether the client sends the call again when the store replica dies under it: True,
    #: False, or the name of a keyword argument whose value (default True) decides. Every
    #: call is idempotent (upserts go by id, one transaction each) but a drop, and a create
    #: that must be new.
    repeat: bool | str = True
    #: A write that adds rows: counts towards the store replica's background compaction.
    adds_rows: bool = False
    #: A write that removes the collection: the replica forgets its write count.
    drops_collection: bool = False
    #: How the call runs on a synchronous store (``run(store, *args, **kwargs)``); None: the
    #: store's own method of that name.
    run: Callable[..., Any] | None = None

    def repeats(self, kwargs: Mapping[str, Any]) -> bool:
        """Whether this call, with these keyword arguments, may be sent again."""
        if isinstance(self.repeat, bool):
            return self.repeat
        return bool(kwargs.get(self.repeat, True))


def without_images(matches: list[Match]) -> list[Match]:
    """``matches`` with their image bytes left out."""
    return [
        m.model_copy(update={"payload": m.payload.model_copy(update={"image": None})})
        if m.payload.image is not None
        else m
        for m in matches
    ]


def search_store(
    store: VectorStore,
    name: str,
    vector: Vector,
    *,
    space: EmbeddingSpace,
    top_k: int = 5,
    include_images: bool = True,
) -> list[Match]:
    """``store.search`` (blocking), leaving images out as asked: by the store when it
    declares ``images_on_request``, else from its answer."""
    if leaves_images_out(store):
        return store.search(name, vector, space=space, top_k=top_k, include_images=include_images)
    matches = store.search(name, vector, space=space, top_k=top_k)
    return matches if include_images else without_images(matches)


#: Every forwarded store call (``close`` is not one: each layer owns its store's lifetime).
STORE_CALLS: tuple[StoreCall, ...] = (
    StoreCall("create_collection", "write", repeat="exist_ok"),
    StoreCall("get_collection", "read"),
    StoreCall("list_collections", "read"),
    StoreCall("drop_collection", "write", repeat=False, drops_collection=True),
    StoreCall("upsert", "write", adds_rows=True),
    StoreCall("existing_ids", "lookup"),
    StoreCall("search", "read", run=search_store),
    StoreCall("list_items", "read", run=list_store_items),
    StoreCall("get_item", "read", run=get_store_item),
    StoreCall("optimize", "write"),
)
CALLS: dict[str, StoreCall] = {call.name: call for call in STORE_CALLS}


def invoke(store: VectorStore, call: StoreCall, /, *args: Any, **kwargs: Any) -> Any:
    """Run ``call`` on the synchronous ``store`` (blocking)."""
    if call.run is not None:
        return call.run(store, *args, **kwargs)
    return getattr(store, call.name)(*args, **kwargs)


class StoreCalls:
    """A class with one coroutine method per entry of :data:`STORE_CALLS`; each forwards its
    arguments to :meth:`_dispatch`, which a subclass defines."""

    async def _dispatch(
        self, call: StoreCall, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        raise NotImplementedError


def _forwarder(call: StoreCall) -> Callable[..., Any]:
    async def forward(self: StoreCalls, *args: Any, **kwargs: Any) -> Any:
        return await self._dispatch(call, args, kwargs)

    forward.__name__ = call.name
    forward.__qualname__ = f"{StoreCalls.__name__}.{call.name}"
    forward.__doc__ = f"The store's ``{call.name}`` ({call.kind}), see VectorStore."
    return forward


for _call in STORE_CALLS:
    setattr(StoreCalls, _call.name, _forwarder(_call))


__all__ = [
    "CALLS",
    "STORE_CALLS",
    "CallKind",
    "StoreCall",
    "StoreCalls",
    "invoke",
    "search_store",
    "without_images",
]
