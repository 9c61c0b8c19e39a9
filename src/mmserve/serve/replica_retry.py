"""Model calls sent again when the replica serving them died: :func:`again_if_replica_dies`.

A model call is pure (the same item gives the same answer and changes nothing), so when the
replica it went to dies under it (a crash, out of memory, a node lost), the ingress sends it
again: Serve routes it to another replica, or queues it until the controller has started a
new one. Only these failures are repeated, a bounded number of times with a short backoff:

* ``RayActorError`` (``ActorDiedError``, ``ActorUnavailableError``): the replica's process
  died or cannot be reached (``server.transport: actor``);
* ``DeploymentUnavailableError``: Serve has no replica of the deployment for the moment;
* gRPC ``UNAVAILABLE``: the replica's channel broke (``server.transport: grpc``).

Anything else (the model's own error, a full queue) is the call's answer and is not repeated.
The store client (:mod:`mmserve.serve.store_server`) sends its calls through
:func:`send_again_if_replica_dies` too: its writes are upserts by id, applied once however
often they are sent (dropping a collection is not repeated).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from grpc import StatusCode
from grpc.aio import AioRpcError
from ray.exceptions import RayActorError
from ray.serve.exceptions import DeploymentUnavailableError
from ray.serve.handle import DeploymentHandle

logger = logging.getLogger(__name__)

#: Sends of one call in all, and the first backoff (doubled per retry, at most 1 s).
ATTEMPTS = 5
BACKOFF_S = 0.1


def replica_died(exc: BaseException) -> bool:
    """Whether ``exc`` says the replica (not the call) failed: safe to send a pure call again."""
    if isinstance(exc, RayActorError | DeploymentUnavailableError):
        return True
    return isinstance(exc, AioRpcError) and exc.code() == StatusCode.UNAVAILABLE


async def send_again_if_replica_dies(
    send: Callable[[], Awaitable[Any]], *, what: str, attempts: int = ATTEMPTS
) -> Any:
    """``await send()``, calling ``send`` again (at most ``attempts`` times in all) when the
    replica that served it died."""
    for attempt in range(attempts):
        try:
            return await send()
        except Exception as exc:
            if attempt == attempts - 1 or not replica_died(exc):
                raise
            logger.warning(
                "%s: replica lost (%s); sending the call again", what, type(exc).__name__
            )
            await asyncio.sleep(min(BACKOFF_S * 2**attempt, 1.0))
    raise AssertionError("unreachable")  # the loop returns or raises


class _RetryingHandle:
    """The parts of a :class:`DeploymentHandle` the model gateway uses (``options``,
    ``remote`` and ``handle.method.remote``), each call sent again if its replica dies."""

    def __init__(self, handle: DeploymentHandle[Any], what: str) -> None:
        self._handle, self._what = handle, what

    def options(self, **options: Any) -> _RetryingHandle:
        return _RetryingHandle(self._handle.options(**options), self._what)

    def remote(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        return send_again_if_replica_dies(
            lambda: self._handle.remote(*args, **kwargs), what=self._what
        )

    def __getattr__(self, name: str) -> _RetryingHandle:
        if name.startswith("_"):
            raise AttributeError(name)
        return _RetryingHandle(getattr(self._handle, name), self._what)


def again_if_replica_dies(handle: DeploymentHandle[Any], *, model: str) -> DeploymentHandle[Any]:
    """``handle`` (a model deployment's) whose calls are sent again when their replica dies;
    the model gateway uses it as it uses the handle itself."""
    return cast(DeploymentHandle[Any], _RetryingHandle(handle, f"model {model!r}"))


__all__ = ["again_if_replica_dies", "replica_died", "send_again_if_replica_dies"]
