"""The engine: runs a checked workflow as a DAG of asyncio tasks.

A step starts as soon as every step it references has finished, so independent steps run
concurrently (their model calls can then share batches). The first failure stops the run: the
steps still running are cancelled, those not started are marked skipped, and the error is
raised with the run's trace attached (:func:`mmserve.workflow.result.trace_of`).

Quick start::

    engine = Engine(gateway)
    result = await engine.run(load_workflow("workflows/caption.yaml"), {"image": png_bytes})
    result.outputs["caption"], result.trace
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from mmserve.errors import (
    DeadlineExceededError,
    InputError,
    MmserveError,
    StepFailedError,
    WorkflowError,
)
from mmserve.gateway.base import ModelGateway
from mmserve.registry import Registry, registry
from mmserve.workflow.context import StepContext
from mmserve.workflow.definition import Workflow
from mmserve.workflow.events import EventHook, StepFinished, StepStarted, emit
from mmserve.workflow.input_values import validate_inputs
from mmserve.workflow.issues import pydantic_message
from mmserve.workflow.references import parse_template, walk_strings
from mmserve.workflow.resolve import ResolveError, resolve
from mmserve.workflow.result import RunResult, StepStatus, TraceEntry, attach_trace
from mmserve.workflow.spec import StepSpec


class Engine:
    """Runs workflows against a model gateway (local models or Ray Serve handles)."""

    def __init__(
        self, gateway: ModelGateway, *, store: Any = None, registry: Registry = registry
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.registry = registry

    async def run(
        self,
        workflow: Workflow,
        inputs: Mapping[str, Any],
        *,
        timeout_s: float | None = None,
        on_event: EventHook | None = None,
    ) -> RunResult:
        """Validate ``inputs``, run every step, return the outputs and the trace.

        Raises :class:`InputError` for bad inputs (before any step runs), the step's own
        :class:`MmserveError` or a :class:`StepFailedError` wrapping anything else, and
        :class:`DeadlineExceededError` naming the steps still running at ``timeout_s``.
        ``on_event`` hears each step start and finish (:mod:`mmserve.workflow.events`).
        """
        values = validate_inputs(workflow.spec.inputs, inputs)
        classes = {sid: self.registry.get("step", s.uses) for sid, s in workflow.spec.steps.items()}
        run = _Run(self, workflow, values, classes)
        run.on_event = on_event
        return await run.execute(timeout_s)


class _Run:
    """The state of one run: finished outputs, running tasks, trace entries."""

    def __init__(
        self, engine: Engine, workflow: Workflow, values: dict[str, Any], classes: dict[str, Any]
    ) -> None:
        self.engine = engine
        self.workflow = workflow
        self.values = values
        self.classes = classes
        self.outputs: dict[str, BaseModel] = {}
        self.tasks: dict[str, asyncio.Task[BaseModel]] = {}
        self.trace: dict[str, TraceEntry] = {}
        self.on_event: EventHook | None = None

    async def execute(self, timeout_s: float | None) -> RunResult:
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        waiting = list(self.workflow.order)
        try:
            await self._check_ahead()
            while waiting or self.tasks:
                for step in [
                    s for s in waiting if self.workflow.dependencies[s] <= self.outputs.keys()
                ]:
                    waiting.remove(step)
                    self.tasks[step] = asyncio.create_task(self._observed(step), name=step)
                remaining = None if deadline is None else max(0.0, deadline - loop.time())
                done, _ = await asyncio.wait(
                    self.tasks.values(), timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    raise self._deadline(timeout_s or 0.0)
                self._collect(done)
        except BaseException as exc:
            await self._stop()
            attach_trace(exc, self._trace())
            raise
        try:
            outputs = {
                name: resolve(value, self.values, self.outputs)
                for name, value in self.workflow.spec.outputs.items()
            }
        except ResolveError as exc:
            error = WorkflowError(f"workflow {self.workflow.name!r}: output {exc}")
            attach_trace(error, self._trace())
            raise error from exc
        return RunResult(outputs=outputs, trace=self._trace())

    async def _check_ahead(self) -> None:
        """Before any step runs, let the later steps refuse what is already known to fail.

        A step class may define ``async check_ahead(known, ctx)`` (a classmethod): ``known``
        holds those of its inputs that depend only on the workflow's inputs and literals
        (unvalidated). The ``retrieve`` step uses it to answer an unknown collection with a
        404 before the steps feeding its query have run. Steps that start at once anyway
        are not checked ahead.
        """
        checks = []
        for step, spec in self.workflow.spec.steps.items():
            check = getattr(self.classes[step], "check_ahead", None)
            if check is None or not self.workflow.dependencies[step]:
                continue
            known = {}
            for key, value in spec.with_.items():
                try:
                    known[key] = resolve(value, self.values, {})
                except (ResolveError, KeyError):
                    continue  # it refers to a step's output: known only when that step ran
            checks.append(check(known, StepContext(step, self.engine.gateway, self.engine.store)))
        await asyncio.gather(*checks)

    def _collect(self, done: set[asyncio.Task[BaseModel]]) -> None:
        """Keep the outputs of finished steps; raise the first failure (declaration order)."""
        errors: dict[str, BaseException] = {}
        for task in done:
            step = task.get_name()
            del self.tasks[step]
            if task.cancelled():  # cancelled from inside the step (we only cancel in _stop)
                uses = self.workflow.spec.steps[step].uses
                errors[step] = StepFailedError(step=step, uses=uses, reason="it was cancelled")
                continue
            error = task.exception()
            if error is None:
                self.outputs[step] = task.result()
            else:
                errors[step] = error
        for step in self.workflow.spec.steps:
            if step in errors:
                raise errors[step]

    def _deadline(self, timeout_s: float) -> DeadlineExceededError:
        running = ", ".join(f"{s!r} ({self.workflow.spec.steps[s].uses})" for s in self.tasks)
        return DeadlineExceededError(
            f"workflow {self.workflow.name!r} ran past its deadline of {timeout_s:g}s; "
            f"still running: step {running}",
            hint="raise the timeout, or give the slow step's model more replicas",
        )

    async def _stop(self) -> None:
        """Cancel the running steps and wait until they have recorded themselves."""
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.tasks.clear()

    async def _observed(self, step: str) -> BaseModel:
        """Run ``step``, telling ``on_event`` when it starts and how it finished."""
        await emit(self.on_event, StepStarted(step=step, uses=self.workflow.spec.steps[step].uses))
        try:
            return await self._step(step)
        finally:
            entry = self.trace.get(step)
            if entry is not None:
                await emit(self.on_event, StepFinished(step=step, entry=entry))

    def _trace(self) -> list[TraceEntry]:
        entries = []
        for step, spec in self.workflow.spec.steps.items():
            entry = self.trace.get(step)
            if entry is None:
                failed = sorted(
                    d for d in self.workflow.dependencies[step] if d not in self.outputs
                )
                reason = (
                    f"dependency {', '.join(failed)} did not finish"
                    if failed
                    else "the run stopped first"
                )
                entry = TraceEntry(
                    step=step, uses=spec.uses, status="skipped", wall_ms=0.0, error=reason
                )
            entries.append(entry)
        return entries

    async def _step(self, step: str) -> BaseModel:
        spec = self.workflow.spec.steps[step]
        ctx = StepContext(step, self.engine.gateway, self.engine.store)
        started = time.perf_counter()

        def record(status: StepStatus, error: str | None = None) -> None:
            wall_ms = (time.perf_counter() - started) * 1000
            self.trace[step] = TraceEntry(
                step=step,
                uses=spec.uses,
                status=status,
                wall_ms=wall_ms,
                batch_size=ctx.batch_size,
                error=error,
            )

        try:
            result = await self._invoke(step, spec, ctx)
        except asyncio.CancelledError:
            record(
                "cancelled",
                "stopped before it finished: a failure elsewhere, the deadline or the caller",
            )
            raise
        except MmserveError as exc:
            record("error", str(exc))
            raise
        except Exception as exc:
            error = StepFailedError(
                step=step, uses=spec.uses, reason=f"{type(exc).__name__}: {exc}"
            )
            record("error", str(error))
            raise error from exc
        record("ok")
        return result

    async def _invoke(self, step: str, spec: StepSpec, ctx: StepContext) -> BaseModel:
        cls = self.classes[step]
        inputs = self._inputs(step, spec, cls)
        timeout = asyncio.timeout(spec.timeout_s)
        try:
            async with timeout:
                result = await cls().run(inputs, ctx)
        except TimeoutError:
            if not timeout.expired():
                raise
            raise DeadlineExceededError(
                f"step {step!r} ({spec.uses}) ran past its timeout of {spec.timeout_s:g}s",
                hint="raise the step's `timeout_s`, or give its model more replicas",
            ) from None
        outputs: type[BaseModel] = cls.Outputs
        if isinstance(result, outputs):
            return result
        if isinstance(result, Mapping):
            return outputs.model_validate(result)
        raise StepFailedError(
            step=step,
            uses=spec.uses,
            reason=f"run() returned {type(result).__name__}, expected {cls.Outputs.__name__}",
        )

    def _inputs(self, step: str, spec: StepSpec, cls: Any) -> BaseModel:
        try:
            raw = {key: resolve(v, self.values, self.outputs) for key, v in spec.with_.items()}
        except ResolveError as exc:
            raise StepFailedError(step=step, uses=spec.uses, reason=str(exc)) from None
        try:
            model: type[BaseModel] = cls.Inputs
            return model.model_validate(raw)
        except ValidationError as exc:
            raise _input_error(step, spec, exc) from None


def _input_error(step: str, spec: StepSpec, exc: ValidationError) -> MmserveError:
    """A step's inputs failed validation: the caller's fault when they came only from
    workflow inputs and literals (InputError), the producing step's fault otherwise."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else "?"
    where = ".".join(str(p) for p in error["loc"])
    message = pydantic_message(error["msg"])
    roots = {
        ref.root
        for _, text in walk_strings(spec.with_.get(field))
        if "${" in text
        for ref in parse_template(text).references
    }
    if roots <= {"inputs"}:
        value = spec.with_.get(field)
        single = parse_template(value).single if isinstance(value, str) else None
        name = str(single.path[0]) if single is not None and single.is_input else None
        return InputError(f"step {step!r} ({spec.uses}): input {where}: {message}", name=name)
    return StepFailedError(step=step, uses=spec.uses, reason=f"input {where}: {message}")


__all__ = ["Engine"]
