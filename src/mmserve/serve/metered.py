"""The ingress' engine and model gateway, recording :mod:`mmserve.serve.metrics`.

:class:`MeteredEngine` is the workflow :class:`~mmserve.workflow.Engine` that records each
run from the trace the run reports (its steps' statuses, wall times and cache use), so that
the engine itself stays free of Ray; :class:`MeteredGateway` wraps the ingress' model gateway
and records each model call a step makes. Recording costs a few metric updates per run, step
and call; the metric objects are made once per process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from mmserve.gateway.contract import Batched, Called, ModelGateway, WrappedGateway
from mmserve.serve.metrics import Ongoing, Recorder, process_recorder, record_model_call
from mmserve.serve.metrics import record_run as _record_run
from mmserve.workflow import Engine, RunResult, TraceEntry, Workflow, trace_of

T = TypeVar("T")
logger = logging.getLogger(__name__)


class MeteredEngine(Engine):
    """An :class:`Engine` whose runs are recorded (see the module docstring)."""

    def __init__(self, *args: Any, recorder: Recorder | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._recorder = process_recorder if recorder is None else recorder
        self._ongoing = Ongoing(self._recorder, "mmserve_workflow_ongoing")

    async def run(self, workflow: Workflow, inputs: Mapping[str, Any], **options: Any) -> RunResult:
        tags = {"workflow": workflow.name}
        with _never_failing():
            self._ongoing.change(tags, +1)
        started = time.perf_counter()
        try:
            result = await super().run(workflow, inputs, **options)
        except BaseException as exc:
            self._record(workflow, trace_of(exc) or [], started, exc)
            raise
        finally:
            with _never_failing():
                self._ongoing.change(tags, -1)
        self._record(workflow, result.trace, started, None)
        return result

    def _record(
        self,
        workflow: Workflow,
        trace: Sequence[TraceEntry],
        started: float,
        error: BaseException | None,
    ) -> None:
        wall_ms = (time.perf_counter() - started) * 1000
        with _never_failing():
            _record_run(self._recorder, workflow.name, trace, wall_ms=wall_ms, error=error)


class MeteredGateway(WrappedGateway):
    """A :class:`~mmserve.gateway.contract.ModelGateway` that records the calls it passes on
    (everything else it offers, e.g. ``image_input``, is passed on unrecorded)."""

    def __init__(self, gateway: ModelGateway, config: Any, recorder: Recorder | None = None):
        """``config``: the app config (the step cache keys results by its models)."""
        super().__init__(gateway)
        self.config = config
        self._recorder = process_recorder if recorder is None else recorder
        self._ongoing = Ongoing(self._recorder, "mmserve_model_ongoing")

    async def call(self, model: str, method: str, item: Any) -> Called[Any]:
        called: Called[Any] = await self._recorded(
            model, method, 1, lambda: self.inner.call(model, method, item)
        )
        return called

    async def call_batch(self, model: str, method: str, items: Sequence[Any]) -> Batched[Any]:
        batched: Batched[Any] = await self._recorded(
            model, method, len(items), lambda: self.inner.call_batch(model, method, items)
        )
        return batched

    async def _recorded(
        self, model: str, method: str, items: int, call: Callable[[], Awaitable[T]]
    ) -> T:
        tags = {"model": model, "method": method}
        with _never_failing():
            self._ongoing.change(tags, +1)
        started = time.perf_counter()
        try:
            result = await call()
        except BaseException as exc:
            self._done(tags, items, started, None, exc)
            raise
        self._done(tags, items, started, getattr(result, "batch_size", None), None)
        return result

    def _done(
        self,
        tags: dict[str, str],
        items: int,
        started: float,
        batch_size: int | None,
        error: BaseException | None,
    ) -> None:
        wall_ms = (time.perf_counter() - started) * 1000
        with _never_failing():
            self._ongoing.change(tags, -1)
            record_model_call(
                self._recorder,
                tags["model"],
                tags["method"],
                items=items,
                wall_ms=wall_ms,
                batch_size=batch_size,
                error=error,
            )


@contextmanager
def _never_failing() -> Iterator[None]:
    """Recording a metric never fails the request it describes: a failure is logged once."""
    global _warned
    try:
        yield
    except Exception:
        if not _warned:
            _warned = True
            logger.exception("recording mmserve's metrics failed (logged once per process)")


_warned = False


__all__ = ["MeteredEngine", "MeteredGateway"]
