"""The vector store when served: one writer deployment, and the client the engine uses.

Every ingress replica must see the same collections, and concurrent ingests must neither lose
nor duplicate items. The app therefore runs exactly one ``store`` replica that owns the
configured store (``store.kind`` at ``store.path``; on a cluster that path is a shared folder
or an object-storage URI, so the replica may run on any node). Writes are serialised there by
one lock; reads run concurrently. Ingress replicas reach it through :class:`StoreClient`, an
:class:`~mmserve.stores.async_store.AsyncVectorStore` over a handle: its calls are awaited, not
blocking a thread, and cancelling one (a deadline, a client gone) cancels the request to the
store replica. A call that has not started there is dropped; a write the replica has already
begun still commits (a store write is one transaction, never half done). When the store
replica dies under a call (SIGKILL, out of memory, a node lost), the call is sent again once
Serve has a replica (:func:`~mmserve.serve.replica_retry.send_again_if_replica_dies`): a write
the dead replica had committed is then applied again by id, which changes nothing, and one it
had not is applied now; either way the caller's answer is true.

Before Serve marks the replica healthy it warms the store: one search and one listing per
collection (:mod:`mmserve.stores.warmup`), so the first search after ready is not the slow one.

Maintenance: after every ``OPTIMIZE_EVERY`` writes to a collection the replica compacts it
(and builds its ANN index once it is large enough, see the store's ``optimize``) in the
background, after answering the write that crossed the mark.

Caller mistakes (an unknown collection, a space mismatch) come back to the client as values
and are raised there, so the replica does not log a traceback for every 404.

Reader replicas (``store.replicas`` / ``store.autoscaling``): a second deployment of this class
with ``reader=True`` opens the same store location and answers searches, gets and listings; it
refuses writes. The client sends reads there and writes (and the id lookups of an ingest,
which decide what it writes) to the writer; a request that asked for read-your-writes
(:mod:`mmserve.http.middleware.read_routing`) sends its reads to the writer too. A reader
killed under a search is handled like the writer: the search is sent again and Serve routes
it to another reader (or waits for the replacement).

Neither class spells out the store's methods: both derive them from the one table of store
calls, :data:`~mmserve.stores.calls.STORE_CALLS`, whose entries say what is a read (to the
readers), a lookup (a read sent to the writer) or a write (to the writer, under its lock), and
which calls may be sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ray.serve.handle import DeploymentHandle

from mmserve.errors import MmserveError, StoreError, StoreFeatureMissingError
from mmserve.http.middleware.read_routing import reads_go_to_writer
from mmserve.serve.handles import translate_error
from mmserve.serve.replica_retry import send_again_if_replica_dies
from mmserve.stores import open_store_at
from mmserve.stores.async_store import AwaitableStore
from mmserve.stores.calls import StoreCall, StoreCalls, invoke
from mmserve.stores.warmup import warm_store

T = TypeVar("T")

#: A store call that takes longer than this is reported as failed rather than hanging a step.
STORE_CALL_TIMEOUT_S = 300.0
#: Writes to one collection between two background compactions.
OPTIMIZE_EVERY = 32

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refused:
    """A caller mistake the replica answers with instead of raising (no traceback logged)."""

    error: MmserveError


class StoreServer(StoreCalls):
    """The single replica owning the store (a Serve deployment class): one method per store
    call (:data:`~mmserve.stores.calls.STORE_CALLS`), each answering the store's value or a
    :class:`Refused`."""

    def __init__(
        self,
        kind: str,
        location: str,
        options: dict[str, Any],
        optimize_every: int = OPTIMIZE_EVERY,
        *,
        reader: bool = False,
    ) -> None:
        self._store = open_store_at(kind, location, options)
        self._reader = reader
        self._write_lock = asyncio.Lock()
        self._optimize_every = optimize_every
        self._writes: dict[str, int] = {}
        self._maintenance: set[asyncio.Task[None]] = set()
        # warm before Serve marks the replica healthy (reads only; Serve's logger, as a
        # replica drops other loggers' INFO lines)
        self.warmup_s = warm_store(self._store, log=logging.getLogger("ray.serve"))

    async def _run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T | Refused:
        try:
            return await asyncio.to_thread(func, *args, **kwargs)
        except MmserveError as exc:
            if exc.status >= 500 and not isinstance(exc, StoreFeatureMissingError):
                raise
            return Refused(exc)

    async def _read(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T | Refused:
        return await self._run(func, *args, **kwargs)

    async def _write(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T | Refused:
        if self._reader:  # the client never sends a write here; one would bypass the lock
            raise StoreError("a store reader replica does not write; writes go to the writer")
        # One write at a time: upserts by id then never race into duplicates or lost rows.
        async with self._write_lock:
            return await self._run(func, *args, **kwargs)

    def _wrote(self, name: str) -> None:
        count = self._writes.get(name, 0) + 1
        self._writes[name] = count
        if count % self._optimize_every == 0:
            task = asyncio.get_running_loop().create_task(self._optimize_quietly(name))
            self._maintenance.add(task)
            task.add_done_callback(self._maintenance.discard)

    async def _optimize_quietly(self, name: str) -> None:
        try:
            await self._write(self._store.optimize, name)
        except Exception:  # maintenance must never take the replica down; writes go on
            log.exception("compacting collection %r failed; will retry later", name)

    async def maintenance_done(self) -> int:
        """Wait for running background compactions (for tests and shutdown); how many ran."""
        tasks = list(self._maintenance)
        await asyncio.gather(*tasks, return_exceptions=True)
        return len(tasks)

    async def _dispatch(
        self, call: StoreCall, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any | Refused:
        name = str(args[0] if args else kwargs.get("name", ""))  # the collection
        if call.drops_collection:
            self._writes.pop(name, None)
        if call.kind != "write":
            return await self._read(invoke, self._store, call, *args, **kwargs)
        result = await self._write(invoke, self._store, call, *args, **kwargs)
        if call.adds_rows and not isinstance(result, Refused):
            self._wrote(name)
        return result


class StoreClient(AwaitableStore):
    """An :class:`~mmserve.stores.async_store.AsyncVectorStore` backed by the store deployment:
    one method per store call (:data:`~mmserve.stores.calls.STORE_CALLS`).

    Each call is awaited on the event loop; when the awaiting task is cancelled the request to
    the store replica is cancelled too.
    """

    def __init__(
        self, handle: DeploymentHandle[Any], readers: DeploymentHandle[Any] | None = None
    ) -> None:
        """``handle``: the writer; ``readers``: the reader replicas, if the app runs any."""
        self._handle = handle
        self._readers = readers

    async def _read(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A read: to the readers, unless there are none or the request asked for
        read-your-writes."""
        to_writer = self._readers is None or reads_go_to_writer()
        return await self._call(method, *args, to=None if to_writer else self._readers, **kwargs)

    async def _call(
        self,
        method: str,
        *args: Any,
        repeat: bool = True,
        to: DeploymentHandle[Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call ``method`` on the store replica (``to``: the readers; default the writer);
        ``repeat``: send it again if the replica dies under it (every store call is
        idempotent but dropping a collection: upserts go by id, one transaction each, so a
        write sent twice is applied once)."""
        handle = self._handle if to is None else to

        async def send() -> Any:
            response = handle.options(method_name=method).remote(*args, **kwargs)
            try:
                return await asyncio.wait_for(response, timeout=STORE_CALL_TIMEOUT_S)
            except BaseException:  # cancelled, timed out, or failed: nothing left running
                response.cancel()
                raise

        try:
            if repeat:
                result = await send_again_if_replica_dies(send, what="the store")
            else:
                result = await send()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = translate_error("the store", exc)
            raise error from (None if error is getattr(exc, "cause", None) else exc)
        if isinstance(result, Refused):
            raise result.error
        return result

    async def _dispatch(
        self, call: StoreCall, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """``call`` to the writer, or (a read) to the readers; sequences sent as lists."""
        args = tuple(
            list(a) if isinstance(a, Sequence) and not isinstance(a, (str, bytes, list)) else a
            for a in args
        )
        if call.kind == "read":
            return await self._read(call.name, *args, **kwargs)
        return await self._call(call.name, *args, repeat=call.repeats(kwargs), **kwargs)

    def close(self) -> None:
        """Nothing to release here: the store deployment owns the store."""


def store_args(kind: str, location: str, options: Mapping[str, Any]) -> tuple[Any, ...]:
    """Constructor arguments of :class:`StoreServer` (the writer; readers add
    ``reader=True``)."""
    return (kind, location, dict(options))


__all__ = [
    "OPTIMIZE_EVERY",
    "STORE_CALL_TIMEOUT_S",
    "Refused",
    "StoreClient",
    "StoreServer",
    "store_args",
]
