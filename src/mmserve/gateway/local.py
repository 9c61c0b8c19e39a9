"""The in-process model gateway: models loaded in this process (local mode, tests).

Each configured model is loaded on first use (or all at once with :meth:`LocalGateway.warm`)
through :func:`mmserve.models.loader.load_backend`, so entries sharing a backend and source
share one instance. Model calls block, so they run off the event loop, on one thread shared by
every model of the process (:func:`model_thread`): torch models are not safe to call from
several threads at once, and torch on CPU runs a model ~20-25% slower once more than one
thread of the process has run it (all-MiniLM-L6-v2 on 2 cores, ``python -m
benchmarks.suite.torch_threads``: 36-40 ms a call while one thread has run it, 44-50 ms on
either thread after a second one did), which a pool of worker threads (``asyncio.to_thread``)
always ends up doing. A call's items are one batch (one per batch key of the role method):
``batch_size`` is the size of the largest.

Concurrent single-item :meth:`LocalGateway.call` s on the same model and method (the items of a
for_each step, independent steps) that arrive within one turn of the event loop ride in one
batch, up to the model's ``batch.max_size``, like Serve's ``@serve.batch`` with no wait.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from mmserve.config import AppConfig
from mmserve.gateway.contract import Batched, Called
from mmserve.gateway.methods import (
    check_items,
    method_of,
    model_spec,
    require_model,
    require_space,
)
from mmserve.gateway.model_inputs import reduce_item_sync
from mmserve.media.sizes import backend_image_input
from mmserve.models.loader import check_backend_serves, load_backend, run_batch, space_of
from mmserve.models.roles import role_spec
from mmserve.models.spec import EmbeddingSpace
from mmserve.registry import Registry, registry

T = TypeVar("T")

_model_thread: ThreadPoolExecutor | None = None
_model_thread_guard = threading.Lock()


def model_thread() -> ThreadPoolExecutor:
    """The one worker thread that runs every in-process model call (see the module doc)."""
    global _model_thread
    with _model_thread_guard:
        if _model_thread is None:
            _model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmserve-model")
        return _model_thread


async def on_model_thread(func: Callable[..., T], *args: Any) -> T:
    """Run ``func(*args)`` on :func:`model_thread` without blocking the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(model_thread(), functools.partial(func, *args))


class LocalGateway:
    """:class:`~mmserve.gateway.contract.ModelGateway` over models loaded in this process."""

    def __init__(self, config: AppConfig, *, registry: Registry = registry) -> None:
        self.config = config
        self._registry = registry
        #: (model, method) -> items waiting for the next batch, with their callers' futures
        self._pending: dict[tuple[str, str], list[tuple[Any, asyncio.Future[Called[Any]]]]] = {}
        self._batches: set[asyncio.Task[None]] = set()  # running batches (kept referenced)

    # -- configuration ----------------------------------------------------------------------

    def model_for(self, role: str, name: str | None = None) -> str:
        return self.config.model_for(role, name)

    def models(self) -> dict[str, str]:
        return {name: self.config.role_of(name) for name in self.config.models}

    def backend(self, model: str) -> Any:
        """The loaded backend of the config entry ``model`` (loading it on first use)."""
        require_model(self.config, model)
        entry = self.config.models[model]
        backend_class = self._registry.get("model", entry.backend)
        role = role_spec(self.config.role_of(model), registry=self._registry)
        check_backend_serves(model, entry.backend, backend_class, role)
        spec = model_spec(self.config, model)
        return load_backend(entry.backend, spec, registry=self._registry)

    def warm(self) -> None:
        """Load every configured model now (e.g. before serving the first request)."""
        for model in self.config.models:
            self.backend(model)

    # -- calls ------------------------------------------------------------------------------

    async def space(self, model: str) -> EmbeddingSpace:
        require_space(self.config, model, registry=self._registry)
        instance = await on_model_thread(self.backend, model)
        return space_of(model, instance)

    async def call(self, model: str, method: str, item: Any) -> Called[Any]:
        """One item; it rides in a batch with the concurrent calls of this loop turn."""
        method_of(self.config, model, method, registry=self._registry)  # fail fast, alone
        check_items(self.config, model, method, [item], registry=self._registry)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Called[Any]] = loop.create_future()
        pending = self._pending.setdefault((model, method), [])
        pending.append((item, future))
        if len(pending) == 1:  # the first of this turn: flush once the others are in
            loop.call_soon(self._flush, model, method)
        return await future

    def _flush(self, model: str, method: str) -> None:
        waiting = self._pending.pop((model, method), [])
        waiting = [(item, future) for item, future in waiting if not future.cancelled()]
        size = self.config.models[model].batch.max_size
        for start in range(0, len(waiting), size):
            task = asyncio.ensure_future(
                self._run_batch(model, method, waiting[start : start + size])
            )
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _run_batch(
        self, model: str, method: str, waiting: list[tuple[Any, asyncio.Future[Called[Any]]]]
    ) -> None:
        try:
            batched = await self.call_batch(model, method, [item for item, _ in waiting])
        except asyncio.CancelledError:
            for _, future in waiting:
                future.cancel()
            raise
        except Exception as exc:
            if len(waiting) == 1:
                if not waiting[0][1].done():
                    waiting[0][1].set_exception(exc)
                return
            # one bad item must not fail the others: each one again, on its own
            for one in waiting:
                await self._run_batch(model, method, [one])
            return
        for (_, future), value in zip(waiting, batched.items, strict=True):
            if not future.done():
                future.set_result(Called(value=value, batch_size=batched.batch_size))

    async def call_batch(self, model: str, method: str, items: Sequence[Any]) -> Batched[Any]:
        """One backend call per batch key among ``items`` (all of them when the method has
        no key); ``batch_size`` is the largest such group."""
        role_method = method_of(self.config, model, method, registry=self._registry)
        check_items(self.config, model, method, items, registry=self._registry)
        groups: dict[Hashable, list[int]] = {}
        for index, item in enumerate(items):
            groups.setdefault(role_method.key_of(item), []).append(index)

        def run() -> list[Any]:
            backend = self.backend(model)
            func: Callable[[list[Any]], Sequence[Any]] = getattr(backend, method)
            # the images the model reads, reduced to its input size (as served)
            needs = backend_image_input(backend)
            inputs = [reduce_item_sync(role_method, item, needs) for item in items]
            results: list[Any] = [None] * len(items)
            for indices in groups.values():
                outputs = run_batch(func, [inputs[i] for i in indices], method=method)
                for index, output in zip(indices, outputs, strict=True):
                    results[index] = output
            return results

        values = await on_model_thread(run) if items else []
        return Batched(items=values, batch_size=max(map(len, groups.values()), default=0))


__all__ = ["LocalGateway", "model_thread", "on_model_thread"]
