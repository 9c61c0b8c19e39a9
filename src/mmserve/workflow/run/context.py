"""What a running step can reach: the models (through a gateway), the store, its own trace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from mmserve.gateway.contract import Batched, Called, ModelGateway

CalledT = TypeVar("CalledT", Called[Any], Batched[Any])


@dataclass
class StepContext:
    """Handed to every ``Step.run``. Steps record the batch sizes their model calls rode in."""

    step_id: str
    gateway: ModelGateway
    #: The vector store (a ``mmserve.stores.contract.VectorStore``) or None when none is configured.
    store: Any = None
    batch_sizes: list[int] = field(default_factory=list)

    def record(self, called: CalledT) -> CalledT:
        """Note the batch size of a model call (a Called or Batched); returns it for chaining."""
        self.batch_sizes.append(called.batch_size)
        return called

    @property
    def batch_size(self) -> int | None:
        return max(self.batch_sizes) if self.batch_sizes else None


__all__ = ["StepContext"]
