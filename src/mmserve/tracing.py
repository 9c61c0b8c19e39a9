"""OpenTelemetry spans of runs, steps and model calls; off (the API's no-op) unless configured.

mmserve uses the OpenTelemetry *API* only, as a library should: its spans go to whatever
tracer provider the process has. :func:`configure` installs one (the SDK with an OTLP exporter)
when the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)
environment variable is set; every mmserve process calls it at start (an ingress replica, a
model replica, local mode). Unset, nothing is set up, the SDK is not even imported, and the
engine and gateways skip their tracing entirely (:func:`enabled` is false).

The spans (names and attributes: docs/cluster.md, "Tracing"): ``workflow NAME`` per run,
``step ID`` per step, ``model NAME.METHOD`` per model call (:class:`TracedGateway`); the
serving layer adds the HTTP request and the model replica's side of each call
(:mod:`mmserve.serve.model_server`). The request id travels in W3C baggage
(:data:`REQUEST_ID`), so every span of a request, in any process, carries it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from opentelemetry import baggage, propagate, trace
from opentelemetry.context import Context, attach, detach
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer

from mmserve.gateway.contract import Batched, Called, ModelGateway, WrappedGateway
from mmserve.version import __version__

T = TypeVar("T")

#: The environment variables that turn tracing on (the OTLP exporter reads them too).
ENDPOINT_ENV = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
#: The baggage key (and span attribute) of the request id (``x-request-id``).
REQUEST_ID = "mmserve.request_id"

_log = logging.getLogger(__name__)
#: A provider given by :func:`use_provider` (else the process's global one).
_provider: trace.TracerProvider | None = None
_tracer: tuple[object, Tracer] | None = None
_configured = False


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for spans to be exported (an OTLP endpoint is set)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_ENV)


def configure() -> bool:
    """Install the SDK with a batching OTLP exporter when :func:`wanted`, once per process;
    returns whether tracing is on. ``OTEL_EXPORTER_OTLP_PROTOCOL`` picks ``grpc`` or
    ``http/protobuf`` (the default); the SDK reads its other ``OTEL_*`` settings itself."""
    global _configured
    if _configured or not wanted():
        return enabled()
    _configured = True
    try:
        provider = _sdk_provider()
    except ImportError as exc:
        _log.warning(
            "%s is set but the OpenTelemetry exporter is missing (%s): tracing is off; "
            "install it with `pip install 'mmserve[tracing]'`",
            next(name for name in ENDPOINT_ENV if os.environ.get(name)),
            exc,
        )
        return False
    trace.set_tracer_provider(provider)
    return True


def _sdk_provider() -> trace.TracerProvider:
    # The SDK and its exporters are the optional extra mmserve[tracing]: imported only here.
    from opentelemetry.sdk.resources import Resource  # deferred: optional
    from opentelemetry.sdk.trace import TracerProvider  # deferred: optional
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # deferred: optional

    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    exporter: Any
    if protocol.strip() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # deferred: optional
            OTLPSpanExporter,
        )

        exporter = OTLPSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # deferred: optional
            OTLPSpanExporter as OTLPHttpSpanExporter,
        )

        exporter = OTLPHttpSpanExporter()
    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME", "mmserve"),
            "service.version": __version__,
            "process.pid": os.getpid(),
        }
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def use_provider(provider: trace.TracerProvider | None) -> None:
    """Send mmserve's spans to ``provider`` instead of the global one (``None``: back to the
    global one); for an application that keeps its own provider, and for tests."""
    global _provider, _tracer
    _provider, _tracer = provider, None


def enabled() -> bool:
    """Whether spans are recorded: a provider was given, or the global one is not the API's
    default (no-op) provider."""
    if _provider is not None:
        return True
    return not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )


def tracer() -> Tracer:
    global _tracer
    provider = _provider if _provider is not None else trace.get_tracer_provider()
    if _tracer is None or _tracer[0] is not provider:
        _tracer = (provider, provider.get_tracer("mmserve", __version__))
    return _tracer[1]


def failed(span: Span, exc: BaseException) -> None:
    """Mark ``span`` failed by ``exc`` (status ERROR, the exception as an event)."""
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        span.set_attribute("mmserve.error.code", code)


def request_id(context: Context | None = None) -> str | None:
    """The request id carried in the baggage of ``context`` (default: the current one)."""
    value = baggage.get_baggage(REQUEST_ID, context)
    return value if isinstance(value, str) else None


@contextmanager
def span(
    name: str,
    attributes: Mapping[str, Any],
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    context: Context | None = None,
    links: Sequence[Link] = (),
) -> Iterator[Span]:
    """A current span, a child of ``context`` (default: the current context): an exception
    marks it failed; a cancellation only says so."""
    token = None if context is None else attach(context)  # its baggage reaches the children
    try:
        given = {key: value for key, value in attributes.items() if value is not None}
        rid = request_id()
        if rid is not None:
            given[REQUEST_ID] = rid
        with tracer().start_as_current_span(
            name,
            kind=kind,
            attributes=given,
            links=links,
            record_exception=False,
            set_status_on_exception=False,
        ) as current:
            try:
                yield current
            except asyncio.CancelledError:
                current.set_attribute("mmserve.cancelled", True)
                raise
            except Exception as exc:
                failed(current, exc)
                raise
    finally:
        if token is not None:
            detach(token)


async def traced(
    work: Awaitable[T],
    name: str,
    attributes: Mapping[str, Any],
    finish: Callable[[Span], None] | None = None,
) -> T:
    """Await ``work`` inside a span (a no-op await when tracing is off); ``finish`` may add
    attributes once the work is over, however it ended."""
    if not enabled():
        return await work
    with span(name, attributes) as current:
        try:
            return await work
        finally:
            if finish is not None:
                finish(current)


class StepOutcome(Protocol):
    """What a step's span records of its trace entry (a ``TraceEntry``)."""

    @property
    def status(self) -> str: ...
    @property
    def batch_size(self) -> int | None: ...
    @property
    def cached(self) -> bool | None: ...
    @property
    def items(self) -> int | None: ...
    @property
    def attempts(self) -> int | None: ...


def step_finish(entry: Callable[[], StepOutcome | None]) -> Callable[[Span], None]:
    """A ``finish`` for a step's span: its trace entry's status, batch size, items, cache."""

    def finish(current: Span) -> None:
        outcome = entry()
        if outcome is None:
            return
        current.set_attribute("mmserve.step.status", outcome.status)
        for key in ("batch_size", "cached", "items", "attempts"):
            value = getattr(outcome, key)
            if value is not None:
                current.set_attribute(f"mmserve.{key}", value)

    return finish


def carrier() -> dict[str, str] | None:
    """The current trace context (W3C ``traceparent`` and baggage) as a dict to send along
    with a call to another process; ``None`` when tracing is off."""
    if not enabled():
        return None
    found: dict[str, str] = {}
    propagate.inject(found)
    return found or None


def extract(given: Mapping[str, str] | None) -> Context | None:
    """The context a :func:`carrier` sent (``None``: none was sent; use the current one)."""
    return propagate.extract(given) if given else None


class TracedGateway(WrappedGateway):
    """A :class:`~mmserve.gateway.contract.ModelGateway` that puts each model call in a
    ``model NAME.METHOD`` span (kind CLIENT), with its batch size and replica."""

    async def call(self, model: str, method: str, item: Any) -> Called[Any]:
        attributes = {"mmserve.model": model, "mmserve.method": method}
        with span(f"model {model}.{method}", attributes, kind=SpanKind.CLIENT) as current:
            called = await self.inner.call(model, method, item)
            current.set_attribute("mmserve.batch_size", called.batch_size)
            current.set_attribute("mmserve.replica", called.replica)
            return called

    async def call_batch(self, model: str, method: str, items: Sequence[Any]) -> Batched[Any]:
        attributes = {"mmserve.model": model, "mmserve.method": method, "mmserve.items": len(items)}
        with span(f"model {model}.{method}", attributes, kind=SpanKind.CLIENT) as current:
            batched = await self.inner.call_batch(model, method, items)
            current.set_attribute("mmserve.batch_size", batched.batch_size)
            return batched


def traced_gateway(gateway: ModelGateway) -> ModelGateway:
    """``gateway`` with its model calls traced when tracing is on (else ``gateway`` itself)."""
    if not enabled() or isinstance(gateway, TracedGateway):
        return gateway
    return TracedGateway(gateway)


__all__ = [
    "ENDPOINT_ENV",
    "REQUEST_ID",
    "TracedGateway",
    "carrier",
    "configure",
    "enabled",
    "extract",
    "failed",
    "request_id",
    "span",
    "step_finish",
    "traced",
    "traced_gateway",
    "tracer",
    "use_provider",
    "wanted",
]
