"""What a running step can reach: the models (through a gateway), the store, its own trace."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from mmserve.gateway.contract import Batched, Called, ModelGateway

CalledT = TypeVar("CalledT", Called[Any], Batched[Any])


class LazyStore:
    """A vector store opened when a step first reaches for it (``ctx.store``), not before:
    a run whose steps never touch the store never opens it (nor imports its engine, e.g.
    LanceDB). ``open()`` is called at most once; what it returns (a store, or None when none
    is configured) is what every step then sees. Hand one to the engine as its ``store``."""

    def __init__(self, open: Callable[[], Any]) -> None:
        self._open = open
        self._lock = threading.Lock()
        self._opened = False
        self._store: Any = None

    def get(self) -> Any:
        """The store, opened on the first call."""
        if not self._opened:
            with self._lock:
                if not self._opened:
                    self._store = self._open()
                    self._opened = True
        return self._store


def resolve_store(store: Any) -> Any:
    """``store`` itself, or the store a :class:`LazyStore` opens (now, on first use)."""
    return store.get() if isinstance(store, LazyStore) else store


class StepContext:
    """Handed to every ``Step.run``. Steps record the batch sizes their model calls rode in.

    ``store`` may be given as a :class:`LazyStore`: it is then opened when a step first reads
    :attr:`store`."""

    def __init__(
        self,
        step_id: str,
        gateway: ModelGateway,
        store: Any = None,
        batch_sizes: list[int] | None = None,
    ) -> None:
        self.step_id = step_id
        self.gateway = gateway
        self._store = store
        self.batch_sizes: list[int] = [] if batch_sizes is None else batch_sizes

    @property
    def store(self) -> Any:
        """The vector store (a ``mmserve.stores.contract.VectorStore``), or None when none is
        configured."""
        return resolve_store(self._store)

    def record(self, called: CalledT) -> CalledT:
        """Note the batch size of a model call (a Called or Batched); returns it for chaining."""
        self.batch_sizes.append(called.batch_size)
        return called

    @property
    def batch_size(self) -> int | None:
        return max(self.batch_sizes) if self.batch_sizes else None

    def __repr__(self) -> str:
        return f"StepContext(step_id={self.step_id!r}, batch_sizes={self.batch_sizes!r})"


__all__ = ["LazyStore", "StepContext", "resolve_store"]
