"""The model deployment: one generic Serve deployment class that hosts one backend.

Each replica loads its backend's weights once, in the constructor, and builds one
``@serve.batch`` queue per method of the roles it hosts -- one per (method, batch key) in
fact, created on first use, so items whose role method gives them different batch keys never
share a batch. Callers (the :class:`~mmserve.serve.handles.HandleGateway`) send one item per
request to :meth:`ModelServer.call`; Serve's batching merges concurrent requests into one
batched backend call of up to ``max_batch_size`` items, and every item comes back with the
size of the batch it rode in and the replica that ran it.

Before Serve marks a replica healthy it warms up: its first ``reconfigure`` runs the sample
items of the roles it warms (:mod:`mmserve.serve.warmup`; ``warmup: false`` turns it off).

A batch that fails is retried item by item, so a bad item fails only its own caller: Ray's
batching would otherwise set one item's exception on every request of the batch.

Batching settings arrive through ``user_config`` and :meth:`ModelServer.reconfigure` and
apply to every queue, so a new ``user_config`` (``batch.max_size`` / ``batch.wait_ms``)
deployed through a Serve config file (``mmserve build`` then ``serve deploy``) reaches
running replicas without restarting them. (Deploying from code, ``serve.run``, always starts
new replicas: Serve gives each code deployment a fresh version.)

Tracing across the handle call brings the ingress's context into the replica's spans. The
caller sends its trace context (W3C ``traceparent`` and baggage, :func:`trace_kwargs`) with
every model call as the ``trace`` argument of :meth:`ModelServer.call`. In the replica:

- :func:`traced_call` gives each request its own ``serve SOURCE.METHOD`` span (kind SERVER),
  a child of the caller's ``model`` span, from its arrival to its answer (queue wait and
  model run): so the replica's part of every run sits in that run's trace, with the size of
  the batch it rode in.
- :func:`traced_batch` puts each batched model call (``@serve.batch`` merges the requests of
  several runs into one) in one ``batch METHOD`` span, linked to every request span it served
  and, as a span has one parent, a child of the first one's (as Ray Serve parents a batch).

Models placed in the ingress go through the same two decorators with no ``trace`` argument:
their spans are children of the current (the caller's) span.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import ray
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanContext, SpanKind
from ray import serve
from ray.serve import Application
from ray.serve.deployment import Deployment

from mmserve import tracing
from mmserve.errors import ModelNotConfiguredError
from mmserve.media.sizes import ImageInput, backend_image_input
from mmserve.models.loader import check_backend_serves, load_backend, run_batch, space_of
from mmserve.models.roles import RoleMethod, role_spec
from mmserve.models.spec import EmbeddingSpace, ModelSpec
from mmserve.registry import registry
from mmserve.serve.plan import ModelDeploymentPlan
from mmserve.serve.warmup import warm_up

T = TypeVar("T")

#: Decorator-time defaults; every replica overrides them from its user_config at start.
_DEFAULT_MAX_BATCH = 8
_DEFAULT_WAIT_S = 0.005

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served(Generic[T]):
    """One item's result, the size of the batch it rode in and the replica that ran it."""

    value: T
    batch_size: int
    replica: str


@dataclass(frozen=True)
class _Failed:
    """One item's failure, handed back through the batch queue and raised to its caller."""

    error: Exception


S = TypeVar("S", bound="ModelServer")
Call = Callable[[S, str, Any], Awaitable[Served[Any]]]
TracedCall = Callable[..., Awaitable[Served[Any]]]
RunBatch = Callable[[S, Callable[[list[Any]], Sequence[Any]], list[Any], str], list[Any]]


def trace_kwargs() -> dict[str, Any]:
    """The keyword arguments that send the current trace context with a handle call (none
    when tracing is off)."""
    given = tracing.carrier()
    return {} if given is None else {"trace": given}


def _deployment() -> str | None:
    try:
        return str(serve.get_replica_context().deployment)
    except Exception:  # outside a replica (unit use)
        return None


def _waiting(server: ModelServer) -> dict[int, list[SpanContext]]:
    """id(item) -> the span contexts of the requests waiting with that item object."""
    found: dict[int, list[SpanContext]] | None = getattr(server, "_trace_waiting", None)
    if found is None:
        found = {}
        server._trace_waiting = found  # type: ignore[attr-defined]
    return found


def _forget(waiting: dict[int, list[SpanContext]], item: Any, context: SpanContext) -> None:
    contexts = waiting.get(id(item))
    if contexts is not None and context in contexts:
        contexts.remove(context)
        if not contexts:
            del waiting[id(item)]


def traced_call(call: Call[S]) -> TracedCall:
    """Decorates ``ModelServer.call``: it takes the caller's ``trace`` and runs the call in a
    request span (see the module docstring)."""

    @functools.wraps(call)
    async def wrapper(
        self: S, method: str, item: Any, trace: dict[str, str] | None = None
    ) -> Served[Any]:
        if not tracing.enabled():
            return await call(self, method, item)
        source = self._source
        attributes = {
            "mmserve.model.source": source,
            "mmserve.method": method,
            "mmserve.deployment": _deployment(),
            "mmserve.replica": self._replica,
        }
        with tracing.span(
            f"serve {source}.{method}",
            attributes,
            kind=SpanKind.SERVER,
            context=tracing.extract(trace),
        ) as span:
            waiting, context = _waiting(self), span.get_span_context()
            waiting.setdefault(id(item), []).append(context)  # for the batch span's links
            try:
                served = await call(self, method, item)
            finally:
                _forget(waiting, item, context)  # (already taken when its batch ran)
            span.set_attribute("mmserve.batch_size", served.batch_size)
            return served

    return wrapper


def traced_batch(run: RunBatch[S]) -> RunBatch[S]:
    """Decorates ``ModelServer._run_batch``: one batch span, linked to its requests' spans."""

    @functools.wraps(run)
    def wrapper(
        self: S, func: Callable[[list[Any]], Sequence[Any]], items: list[Any], method: str
    ) -> list[Served[Any] | _Failed]:
        if not tracing.enabled():
            return run(self, func, items, method)
        waiting = _waiting(self)
        contexts = []
        for item in items:
            queued = waiting.get(id(item))
            if queued:
                contexts.append(queued.pop(0))
                if not queued:
                    del waiting[id(item)]
        # A fresh context: the batch task's own is that of whichever call started the queue.
        parent = Context()
        if contexts:
            parent = trace.set_span_in_context(trace.NonRecordingSpan(contexts[0]), parent)
        attributes = {
            "mmserve.model.source": self._source,
            "mmserve.method": method,
            "mmserve.batch_size": len(items),
        }
        links = [Link(context) for context in contexts]
        with tracing.span(f"batch {method}", attributes, context=parent, links=links) as span:
            outcomes = run(self, func, items, method)
            failures = [o for o in outcomes if isinstance(o, _Failed)]
            if failures:
                span.set_attribute("mmserve.failed_items", len(failures))
                tracing.failed(span, failures[0].error)
            return outcomes

    return wrapper


def _replica_id() -> str:
    try:
        return str(serve.get_replica_context().replica_id.unique_id)
    except Exception:  # outside a replica (unit use): there is no replica id
        return "local"


class ModelServer:
    """A replica of one model deployment (see the module docstring)."""

    def __init__(
        self,
        backend: str,
        spec: dict[str, Any],
        roles: list[str],
        warmup_roles: Sequence[str] = (),
    ) -> None:
        tracing.configure()  # spans exported when OTEL_EXPORTER_OTLP_ENDPOINT is set
        self._roles = frozenset(roles)
        self._methods: dict[str, RoleMethod] = {}
        backend_class = registry.get("model", backend)
        for name in sorted(self._roles):
            role = role_spec(name)
            check_backend_serves(backend, backend, backend_class, role)
            self._methods.update(role.methods)
        self._source = str(spec.get("source", backend))
        self._backend: Any = load_backend(backend, ModelSpec.model_validate(spec))
        # Warmed in the first reconfigure (it knows the batch size), before Serve marks the
        # replica healthy; see mmserve.serve.warmup.
        self._warmup_roles = [role_spec(name) for name in sorted(set(warmup_roles))]
        self._warmup_s: float | None = None
        self._warmed = False
        self._replica = _replica_id()
        self._queues: dict[tuple[str, Hashable], Any] = {}
        self._batch_settings: dict[str, float] = {
            "max_batch_size": _DEFAULT_MAX_BATCH,
            "batch_wait_timeout_s": _DEFAULT_WAIT_S,
        }

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Apply batching settings live (Serve calls this at start and on config change)."""
        max_size = int(user_config.get("max_batch_size", _DEFAULT_MAX_BATCH))
        wait_s = float(user_config.get("batch_wait_timeout_s", _DEFAULT_WAIT_S))
        self._batch_settings = {"max_batch_size": max_size, "batch_wait_timeout_s": wait_s}
        for queue in self._queues.values():
            queue.set_max_batch_size(max_size)
            queue.set_batch_wait_timeout_s(wait_s)
        if not self._warmed:
            self._warmed = True
            self._warm_up(max_size)

    def _warm_up(self, max_batch_size: int) -> None:
        # Serve's logger: a replica drops other loggers' INFO lines.
        serve_log = logging.getLogger("ray.serve")
        if not self._warmup_roles:
            serve_log.info("%s: warm-up off", self._source)
            return
        self._warmup_s = warm_up(
            self._backend,
            self._warmup_roles,
            max_batch_size,
            label=f"{self._source} ({self._replica})",
            source=self._source,
            run=run_batch,
            log=serve_log,
        )

    def settings(self) -> dict[str, Any]:
        """This replica's id, node, roles, methods and batching settings (for diagnostics)."""
        return {
            "replica": self._replica,
            # (only inside Ray: asking the runtime context elsewhere would start Ray)
            "node_id": ray.get_runtime_context().get_node_id() if ray.is_initialized() else "",
            "roles": sorted(self._roles),
            "methods": sorted(self._methods),
            "warmup_s": self._warmup_s,
            **self._batch_settings,
        }

    async def space(self) -> EmbeddingSpace:
        return space_of(f"this deployment ({', '.join(sorted(self._roles))})", self._backend)

    async def image_input(self) -> ImageInput | None:
        """The input size the backend's image processor reads (``None``: it states none);
        the ingress reduces images to it before sending them (:mod:`mmserve.media.sizes`)."""
        return backend_image_input(self._backend)

    @traced_call  # takes the caller's trace context (`trace=`)
    async def call(self, method: str, item: Any) -> Served[Any]:
        """Run ``method`` on one item, batched with concurrent calls of the same batch key."""
        role_method = self._methods.get(method)
        if role_method is None:
            raise ModelNotConfiguredError(
                f"this deployment serves {', '.join(sorted(self._roles))}, which have no "
                f"method {method!r} (methods: {', '.join(sorted(self._methods))})"
            )
        outcome: Served[Any] | _Failed = await self._queue(method, role_method.key_of(item))(item)
        if isinstance(outcome, _Failed):
            raise outcome.error
        return outcome

    def _queue(self, method: str, key: Hashable) -> Callable[[Any], Any]:
        """The ``@serve.batch`` queue of ``method`` for items of batch key ``key``."""
        queue = self._queues.get((method, key))
        if queue is None:
            func: Callable[[list[Any]], Sequence[Any]] = getattr(self._backend, method)

            async def run(items: list[Any]) -> list[Served[Any] | _Failed]:
                return await self._batch(func, items, method)

            run.__name__ = run.__qualname__ = method  # Serve's batch metrics name the method
            queue = serve.batch(
                max_batch_size=int(self._batch_settings["max_batch_size"]),
                batch_wait_timeout_s=self._batch_settings["batch_wait_timeout_s"],
            )(run)
            self._queues[(method, key)] = queue
        return cast(Callable[[Any], Any], queue)

    async def _batch(
        self, func: Callable[[list[Any]], Sequence[Any]], items: list[Any], method: str
    ) -> list[Served[Any] | _Failed]:
        """Run one batch cut by a queue (a model placed in the ingress runs it elsewhere)."""
        return self._run_batch(func, items, method)

    @traced_batch
    def _run_batch(
        self, func: Callable[[list[Any]], Sequence[Any]], items: list[Any], method: str
    ) -> list[Served[Any] | _Failed]:
        # Called on the replica's user-code loop on purpose, as Ray Serve's batching guide
        # does: Ray 2.60's @serve.batch cuts the next batch as soon as its wait expires,
        # even while the previous batch runs, so a model call in a worker thread left the
        # loop free to chop waiting requests into batches of one or two (measured: mean
        # batch 1.3 at concurrency 16). Blocking here lets every request that arrives during
        # the call ride in the next batch. Health checks run on Serve's own loop, not this
        # one (RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD), so they are not held up.
        try:
            outputs = run_batch(func, items, method=method)
        except Exception as exc:
            if len(items) == 1:
                return [_Failed(exc)]
            _log.warning(
                "%s: a batch of %d failed (%s: %s); retrying its items one by one",
                method,
                len(items),
                type(exc).__name__,
                exc,
            )
            return [self._run_one(func, item, method) for item in items]
        size = len(outputs)
        return [Served(value=output, batch_size=size, replica=self._replica) for output in outputs]

    def _run_one(
        self, func: Callable[[list[Any]], Sequence[Any]], item: Any, method: str
    ) -> Served[Any] | _Failed:
        try:
            (output,) = run_batch(func, [item], method=method)
        except Exception as exc:
            return _Failed(exc)
        return Served(value=output, batch_size=1, replica=self._replica)


def as_deployment(cls: type, name: str, options: dict[str, Any]) -> Deployment:
    """``serve.deployment`` of a class with options (typed: Serve's overloads confuse mypy)."""
    return cast(Deployment, serve.deployment(cls)).options(name=name, **options)


def model_deployment(plan: ModelDeploymentPlan) -> Application:
    """The bound Serve application node of one model deployment plan."""
    deployment = as_deployment(ModelServer, plan.name, plan.options)
    return deployment.bind(
        plan.backend, plan.spec.model_dump(), list(plan.roles), list(plan.warmup_roles)
    )


__all__ = [
    "ModelServer",
    "Served",
    "as_deployment",
    "model_deployment",
    "trace_kwargs",
    "traced_batch",
    "traced_call",
]
