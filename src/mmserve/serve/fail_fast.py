"""Fail fast: a model call to a deployment with no running replica answers 503 at once.

Serve queues a call to a deployment that has no running replica until one runs. When none
will run soon (a replica that cannot be scheduled, a deployment whose replicas failed to
start, its first replicas still loading, or unhealthy with no replacement on its way), the
request would only wait out its deadline and end in a 504 that blames slowness. Instead the
ingress answers :class:`~mmserve.errors.ModelUnavailableError` (503 + ``Retry-After``) naming
the model and the reason, within a second.

Each ingress process keeps one :class:`ReplicaWatch`: its view of the app
(:func:`mmserve.serve.status.read_app_view`) is read on demand, in a thread, at most
once per :data:`REFRESH_S` however many calls ask, and never per request: a call is checked
against the view before it is sent only when the last view found its deployment unavailable,
and otherwise only once it has waited :data:`SLOW_S` (most calls answer sooner and cost
nothing). A slow call whose deployment has running replicas is simply slow: it goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from ray.serve.handle import DeploymentHandle

from mmserve.errors import ModelUnavailableError
from mmserve.serve.status import AppView, unavailable

logger = logging.getLogger(__name__)

#: A call running this long makes the ingress look at its deployment's replicas.
SLOW_S = 0.4
#: The view is read again at most this often (per ingress process).
REFRESH_S = 0.5
#: How long a read of the view may take before the last one is used.
READ_TIMEOUT_S = 2.0


class ReplicaWatch:
    """A per-process view of which model deployments can take calls (see the module doc)."""

    def __init__(self, read: Callable[[], AppView | None]) -> None:
        self._read = read
        self._view: AppView | None = None
        self._read_at = float("-inf")
        self._reading: asyncio.Future[AppView | None] | None = None

    async def view(self) -> AppView | None:
        """The app's view, read again if older than :data:`REFRESH_S` (one read at a time)."""
        if time.monotonic() - self._read_at < REFRESH_S:
            return self._view
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(asyncio.to_thread(self._read))
        try:
            self._view = await asyncio.wait_for(asyncio.shield(self._reading), READ_TIMEOUT_S)
        except Exception as exc:  # the controller is away: keep the last view
            logger.warning("reading the app's replicas failed: %s: %s", type(exc).__name__, exc)
        self._read_at = time.monotonic()
        return self._view

    def known_unavailable(self, deployment: str) -> bool:
        """Whether the last view (without reading again) found ``deployment`` unavailable."""
        found = self._view.deployments.get(deployment) if self._view is not None else None
        return found is not None and unavailable(found) is not None

    async def check(self, deployment: str, model: str) -> None:
        """Raise :class:`ModelUnavailableError` if ``deployment`` (serving ``model``) cannot
        take a call now; return if it can, will soon, or the view is not known."""
        view = await self.view()
        found = view.deployments.get(deployment) if view is not None else None
        reason = unavailable(found) if found is not None else None
        if reason is not None:
            kind, why = reason
            raise ModelUnavailableError(model=model, deployment=deployment, kind=kind, why=why)

    async def watched(self, deployment: str, model: str, send: Callable[[], Awaitable[Any]]) -> Any:
        """``await send()``, failing fast if ``deployment`` cannot take it (module doc)."""
        if self.known_unavailable(deployment):
            await self.check(deployment, model)
        call = asyncio.ensure_future(_awaited(send))
        try:
            done, _ = await asyncio.wait({call}, timeout=SLOW_S)
            while not done:
                await self.check(deployment, model)
                done, _ = await asyncio.wait({call}, timeout=REFRESH_S)
        except BaseException:
            call.cancel()
            raise
        return call.result()


class _WatchedHandle:
    """The parts of a :class:`DeploymentHandle` the model gateway uses, each call watched."""

    def __init__(self, handle: Any, watch: ReplicaWatch, deployment: str, model: str) -> None:
        self._handle, self._watch = handle, watch
        self._deployment, self._model = deployment, model

    def options(self, **options: Any) -> _WatchedHandle:
        return self._like(self._handle.options(**options))

    def remote(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        return self._watch.watched(
            self._deployment, self._model, lambda: self._handle.remote(*args, **kwargs)
        )

    def __getattr__(self, name: str) -> _WatchedHandle:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._like(getattr(self._handle, name))

    def _like(self, handle: Any) -> _WatchedHandle:
        return _WatchedHandle(handle, self._watch, self._deployment, self._model)


async def _awaited(send: Callable[[], Awaitable[Any]]) -> Any:
    return await send()


def failing_fast(
    handles: Mapping[str, DeploymentHandle[Any]],
    deployment_of: Mapping[str, str],
    watch: ReplicaWatch,
) -> dict[str, DeploymentHandle[Any]]:
    """``handles`` (model -> its deployment's handle) whose calls fail fast through ``watch``;
    ``deployment_of`` maps each model to its deployment's name."""
    return {
        model: cast(
            DeploymentHandle[Any],
            _WatchedHandle(handle, watch, deployment_of.get(model, model), model),
        )
        for model, handle in handles.items()
    }


__all__ = ["READ_TIMEOUT_S", "REFRESH_S", "SLOW_S", "ReplicaWatch", "failing_fast"]
