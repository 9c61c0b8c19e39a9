"""What a stand-in deployment handle returns from ``.remote()``: an awaitable that can be
cancelled, as Serve's ``DeploymentResponse`` is (the store client cancels on a deadline)."""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any


class Pending:
    """Awaits ``coroutine``; ``cancel()`` does nothing (the coroutine runs in this process)."""

    def __init__(self, coroutine: Coroutine[Any, Any, object]) -> None:
        self._coroutine = coroutine

    def __await__(self) -> Generator[Any, None, object]:
        return self._coroutine.__await__()

    def cancel(self) -> None:
        pass
