"""The served-mode :class:`~mmserve.gateway.contract.ModelGateway`: model calls over Serve handles.

Every call goes to the deployment's generic ``call(method, item)``. Each item of a
``call_batch`` is sent as its own request, concurrently, so that Serve's dynamic
batching (``@serve.batch`` in :mod:`mmserve.serve.model_server`) merges items of concurrent
workflow runs into one model call; ``batch_size`` is the largest batch any item rode in.
Errors raised inside a replica come back as the original :class:`MmserveError`; Serve's own
failures become serving errors with a clear message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from grpc import StatusCode
from grpc.aio import AioRpcError
from ray.exceptions import RayActorError, RayTaskError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError
from ray.serve.handle import DeploymentHandle

from mmserve.config import AppConfig
from mmserve.errors import (
    MmserveError,
    ModelNotConfiguredError,
    OverloadedError,
    ServiceUnavailableError,
    ServingError,
)
from mmserve.gateway.contract import Batched, Called
from mmserve.gateway.methods import check_items, method_of, require_space
from mmserve.gateway.model_inputs import reduce_item
from mmserve.media.sizes import ImageInput
from mmserve.models.roles import RoleMethod
from mmserve.models.spec import EmbeddingSpace
from mmserve.serve.model_server import Served, trace_kwargs

T = TypeVar("T")


def with_transport(handle: DeploymentHandle[Any], transport: str) -> DeploymentHandle[Any]:
    """``handle`` sending its calls the ``server.transport`` way: over Ray Serve's gRPC data
    plane (``grpc``) or as Ray actor calls through the object store (``actor``).

    Set here, in the replica that calls, because a handle's transport is fixed where the
    handle is made (the driver that built the app) and travels with it."""
    return handle.options(_by_reference=transport == "actor")


def translate_error(what: str, exc: BaseException) -> BaseException:
    """The error to raise for a failed handle call to ``what`` (a model or the store)."""
    if isinstance(exc, MmserveError):
        return exc
    if isinstance(exc, RayTaskError):
        cause = exc.cause
        return cause if isinstance(cause, MmserveError) else _replica_failed(what, cause)
    if isinstance(exc, BackPressureError):
        return OverloadedError(
            f"{what} is at capacity (its request queue is full)",
            hint="retry shortly, or raise its replicas / max_queued_requests",
        )
    if isinstance(exc, RayActorError | DeploymentUnavailableError):
        return ServiceUnavailableError(
            f"{what} is unavailable: {exc}",
            hint="check `/v1/health`; its replicas may be restarting",
        )
    if isinstance(exc, AioRpcError):  # server.transport: grpc
        status, details = exc.code(), exc.details() or ""
        if status == StatusCode.UNAVAILABLE:
            return ServiceUnavailableError(
                f"{what} is unavailable (gRPC {status.name}: {details})",
                hint="check `/v1/health`; its replicas may be restarting",
            )
        return ServingError(
            f"{what} failed (gRPC {status.name}: {details})",
            hint="see the replica's log (`ray logs` or the Ray dashboard); "
            "`server.transport: actor` avoids gRPC",
        )
    if isinstance(exc, TimeoutError):  # a call's own time limit (the store's), not the request's
        return ServingError(
            f"{what} did not answer within its call time limit",
            hint="see the replica's log (`ray logs` or the Ray dashboard); it may be overloaded",
        )
    if isinstance(exc, Exception):
        # over gRPC a replica's own exception arrives as itself, not wrapped in RayTaskError
        return _replica_failed(what, exc)
    return exc


def _replica_failed(what: str, error: BaseException) -> ServingError:
    """``what``'s replica raised ``error`` (not an mmserve error): its log has the traceback."""
    return ServingError(
        f"{what} failed: {type(error).__name__}: {error}",
        hint="see the replica's log (`ray logs` or the Ray dashboard) for the traceback",
    )


async def _call(model: str, response: Awaitable[Any]) -> Any:
    """Await one handle call, turning Ray/Serve failures into mmserve errors."""
    try:
        return await response
    except MmserveError:
        raise
    except Exception as exc:  # only the call is awaited here: whatever fails is the model's
        error = translate_error(f"model {model!r}", exc)
        # A replica's own MmserveError is re-raised as is: the Ray wrapper adds nothing.
        raise error from (None if error is getattr(exc, "cause", None) else exc)


class HandleGateway:
    """Calls the model deployments of a served app through their DeploymentHandles."""

    def __init__(self, config: AppConfig, handles: Mapping[str, DeploymentHandle[Any]]) -> None:
        """``handles`` maps every config model name to its deployment's handle (models that
        share a deployment share a handle); models placed in the ingress have none."""
        deployed = {name for name, model in config.models.items() if model.placement != "ingress"}
        missing = sorted(deployed - set(handles))
        if missing:
            raise ModelNotConfiguredError(f"no deployment handle for model(s) {missing}")
        self._config = config
        self._handles = dict(handles)
        self._spaces: dict[str, EmbeddingSpace] = {}
        self._image_inputs: dict[str, ImageInput | None] = {}

    def model_for(self, role: str, name: str | None = None) -> str:
        return self._config.model_for(role, name)

    def models(self) -> dict[str, str]:
        return {name: self._config.role_of(name) for name in self._config.models}

    async def space(self, model: str) -> EmbeddingSpace:
        if model not in self._spaces:
            require_space(self._config, model)
            handle = self._handles[model]
            self._spaces[model] = await _call(model, handle.space.remote())
        return self._spaces[model]

    async def image_input(self, model: str) -> ImageInput | None:
        """The input size ``model``'s replicas read images at (asked once, then kept)."""
        if model not in self._image_inputs:
            found = await _call(model, self._handles[model].image_input.remote())
            self._image_inputs[model] = found
        return self._image_inputs[model]

    async def _for_model(self, model: str, role_method: RoleMethod, item: Any) -> Any:
        """``item`` with the images the model reads reduced to its input size."""
        if role_method.model_images is None:
            return item
        return await reduce_item(role_method, item, await self.image_input(model))

    async def call(self, model: str, method: str, item: Any) -> Called[Any]:
        role_method = method_of(self._config, model, method)
        check_items(self._config, model, method, [item])  # refused here, not in the replica
        item = await self._for_model(model, role_method, item)
        handle = self._handles[model].options(method_name="call")
        served: Served[Any] = await _call(model, handle.remote(method, item, **trace_kwargs()))
        return Called(value=served.value, batch_size=served.batch_size, replica=served.replica)

    async def call_batch(self, model: str, method: str, items: Sequence[Any]) -> Batched[Any]:
        role_method = method_of(self._config, model, method)
        check_items(self._config, model, method, items)
        handle = self._handles[model].options(method_name="call")
        # At most max_ongoing_requests of one call in flight: enough to fill every batch,
        # while a large ingest does not flood the model's queue (and trip its limit) alone.
        limit = asyncio.Semaphore(self._config.models[model].max_ongoing_requests)

        async def one(item: Any) -> Served[Any]:
            async with limit:
                item = await self._for_model(model, role_method, item)
                result: Served[Any] = await _call(
                    model, handle.remote(method, item, **trace_kwargs())
                )
                return result

        return await serve_each(items, one)


async def serve_each(
    items: Sequence[Any], one: Callable[[Any], Awaitable[Served[Any]]]
) -> Batched[Any]:
    """``one(item)`` for every item at once, as one batched answer (the largest batch any
    item rode in); when one item fails, the others are cancelled and the failure raised."""
    tasks = [asyncio.ensure_future(one(item)) for item in items]
    try:
        served = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:  # one item failed: the others' results would be discarded
            task.cancel()
        raise
    return Batched(
        items=[item.value for item in served],
        batch_size=max((item.batch_size for item in served), default=0),
    )


__all__ = ["HandleGateway", "serve_each", "translate_error", "with_transport"]
