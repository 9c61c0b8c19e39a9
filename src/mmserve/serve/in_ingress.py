"""Models placed in the ingress (``placement: ingress``): called without a Ray handle hop.

Every ingress replica loads each such model once (models sharing weights share one) as an
:class:`IngressModel`: the model deployment's own
:class:`~mmserve.serve.model_server.ModelServer` -- the same ``@serve.batch`` queue per
(method, batch key), the same item-by-item retry of a failed batch, the same warm-up before
the replica reports ready -- with one difference. A model replica runs each batch on its
event loop, which has nothing else to do; the ingress's loop parses HTTP and runs the engine
for every request, so here a batch runs on the process's one model thread
(:func:`mmserve.gateway.local.model_thread`: torch on CPU runs slower once a second thread has
run a model), and calls that arrive while a batch of the model runs wait at a gate. When the
batch ends they enter the queue together and ride in the next batch, as requests arriving
during a batch do in a model replica (Ray 2.60's ``@serve.batch`` would otherwise cut them into
batches of one while the previous batch runs). A model cheaper than the hand-off to that
thread (its method's last batch took under :data:`INLINE_BELOW_S`) runs on the loop itself.

:class:`PlacedGateway` is the ingress's model gateway: models in the ingress are called here,
the others through their deployments' handles (:class:`~mmserve.serve.handles.HandleGateway`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mmserve.config import AppConfig
from mmserve.errors import MmserveError, ServingError
from mmserve.gateway.contract import Batched, Called, ModelGateway
from mmserve.gateway.local import model_thread, on_model_thread
from mmserve.gateway.methods import check_items, method_of, require_space
from mmserve.gateway.model_inputs import reduce_item
from mmserve.media.sizes import ImageInput
from mmserve.models.roles import RoleMethod
from mmserve.models.spec import EmbeddingSpace
from mmserve.serve.handles import serve_each
from mmserve.serve.model_server import ModelServer, Served, _Failed
from mmserve.serve.plan import ModelDeploymentPlan, plan_ingress_models

#: A method whose last batch ran faster than this runs its next batch on the event loop
#: itself: handing it to the model thread and back would cost more than the model (the fake
#: model takes ~0.3 ms a call; the hop adds two thread wake-ups, more on a busy machine).
INLINE_BELOW_S = 0.002


class IngressModel(ModelServer):
    """A model served inside an ingress replica (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._running = 0
        self._idle: asyncio.Event | None = None
        #: method -> seconds its last batch took to run (unknown: on the model thread)
        self._last_s: dict[str, float] = {}

    async def call(self, method: str, item: Any) -> Served[Any]:
        if self._running:  # wait for the running batch: then ride in the next one, together
            assert self._idle is not None
            await self._idle.wait()
        return await super().call(method, item)

    async def _batch(
        self, func: Callable[[list[Any]], Sequence[Any]], items: list[Any], method: str
    ) -> list[Served[Any] | _Failed]:
        if self._last_s.get(method, INLINE_BELOW_S) < INLINE_BELOW_S:
            return self._timed(func, items, method)
        if self._idle is None:
            self._idle = asyncio.Event()
        self._running += 1
        self._idle.clear()
        try:
            return await on_model_thread(self._timed, func, items, method)
        finally:
            self._running -= 1
            if not self._running:
                self._idle.set()

    def _timed(
        self, func: Callable[[list[Any]], Sequence[Any]], items: list[Any], method: str
    ) -> list[Served[Any] | _Failed]:
        start = time.perf_counter()
        try:
            return self._run_batch(func, items, method)
        finally:
            self._last_s[method] = time.perf_counter() - start


def start_model(plan: ModelDeploymentPlan) -> IngressModel:
    """Load and warm one planned in-ingress model, on the model thread (blocking)."""

    def start() -> IngressModel:
        model = IngressModel(
            plan.backend, plan.spec.model_dump(), list(plan.roles), list(plan.warmup_roles)
        )
        model.reconfigure(plan.options["user_config"])  # applies batching, warms up
        return model

    return model_thread().submit(start).result()


def start_ingress_models(config: AppConfig) -> dict[str, IngressModel]:
    """Config model name -> its loaded, warmed in-ingress model, for every model placed in
    the ingress (models sharing weights share one)."""
    started: dict[str, IngressModel] = {}
    for plan in plan_ingress_models(config):
        model = start_model(plan)
        started.update(dict.fromkeys(plan.models, model))
    return started


class PlacedGateway:
    """:class:`~mmserve.gateway.contract.ModelGateway` of an ingress replica: ``local`` models
    (placed in the ingress) in process, every other model through ``remote``."""

    def __init__(
        self, config: AppConfig, remote: ModelGateway, local: Mapping[str, IngressModel]
    ) -> None:
        self._config = config
        self._remote = remote
        self._local = dict(local)
        self._spaces: dict[str, EmbeddingSpace] = {}
        self._image_inputs: dict[str, ImageInput | None] = {}

    async def _for_model(self, model: str, role_method: RoleMethod, item: Any) -> Any:
        """``item`` with the images the model reads reduced to its input size, as the handle
        gateway does before a model deployment's call (a large JPEG upload is then never
        decoded in full: :mod:`mmserve.media.sizes`)."""
        if role_method.model_images is None:
            return item
        if model not in self._image_inputs:  # (read from the processor once)
            self._image_inputs[model] = await self._local[model].image_input()
        return await reduce_item(role_method, item, self._image_inputs[model])

    def model_for(self, role: str, name: str | None = None) -> str:
        return self._config.model_for(role, name)

    def models(self) -> dict[str, str]:
        return {name: self._config.role_of(name) for name in self._config.models}

    async def space(self, model: str) -> EmbeddingSpace:
        if model not in self._local:
            return await self._remote.space(model)
        if model not in self._spaces:
            require_space(self._config, model)
            self._spaces[model] = await self._local[model].space()
        return self._spaces[model]

    async def call(self, model: str, method: str, item: Any) -> Called[Any]:
        if model not in self._local:
            return await self._remote.call(model, method, item)
        role_method = method_of(self._config, model, method)
        check_items(self._config, model, method, [item])
        served = await self._served(model, method, role_method, item)
        return Called(value=served.value, batch_size=served.batch_size, replica=served.replica)

    async def call_batch(self, model: str, method: str, items: Sequence[Any]) -> Batched[Any]:
        if model not in self._local:
            return await self._remote.call_batch(model, method, items)
        role_method = method_of(self._config, model, method)
        check_items(self._config, model, method, items)
        # As the handle gateway: at most max_ongoing_requests items of one call in flight.
        limit = asyncio.Semaphore(self._config.models[model].max_ongoing_requests)

        async def one(item: Any) -> Served[Any]:
            async with limit:
                return await self._served(model, method, role_method, item)

        return await serve_each(items, one)

    async def _served(
        self, model: str, method: str, role_method: RoleMethod, item: Any
    ) -> Served[Any]:
        item = await self._for_model(model, role_method, item)
        try:
            return await self._local[model].call(method, item)
        except MmserveError:
            raise
        except Exception as exc:  # the backend's own error: as a model deployment reports it
            raise ServingError(
                f"model {model!r} failed: {type(exc).__name__}: {exc}",
                hint="see the ingress replica's log (`ray logs` or the Ray dashboard)",
            ) from exc


__all__ = ["IngressModel", "PlacedGateway", "start_ingress_models", "start_model"]
