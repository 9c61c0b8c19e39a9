"""Tracing across the handle call: the ingress's context into the model replica's spans.

The caller sends its trace context (W3C ``traceparent`` and baggage, :func:`trace_kwargs`)
with every model call as the ``trace`` argument of
:meth:`~mmserve.serve.model_server.ModelServer.call`. In the replica:

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
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanContext, SpanKind

from mmserve import tracing

if TYPE_CHECKING:
    from mmserve.serve.model_server import ModelServer, Served, _Failed

S = TypeVar("S", bound="ModelServer")
Call = Callable[[S, str, Any], Awaitable["Served[Any]"]]
TracedCall = Callable[..., Awaitable["Served[Any]"]]
RunBatch = Callable[[S, Callable[[list[Any]], Sequence[Any]], list[Any], str], list[Any]]


def trace_kwargs() -> dict[str, Any]:
    """The keyword arguments that send the current trace context with a handle call (none
    when tracing is off)."""
    given = tracing.carrier()
    return {} if given is None else {"trace": given}


def _deployment() -> str | None:
    try:
        from ray import serve

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
        from mmserve.serve.model_server import _Failed

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


__all__ = ["trace_kwargs", "traced_batch", "traced_call"]
