"""The engine: runs a checked workflow as a DAG of asyncio tasks.

A step starts as soon as every step it references has finished, so independent steps run
concurrently (their model calls can then share batches). A step whose ``when`` is false, or
that references a skipped step, is skipped (outputs referring to it are null). A ``for_each``
step runs once per item, concurrently (bounded), so the items' model calls share batches. The
first failure stops the run: the steps still running are cancelled, those not started are
marked skipped, and the error is raised with the run's trace attached
(:func:`mmserve.workflow.run.result.trace_of`).

Event points (one place each): :meth:`_Run._step_started`, :meth:`_Run._step_finished`,
:meth:`_Run._item_finished`. A run schedules its steps; its
:class:`~mmserve.workflow.run.engine_steps.StepRunner` runs each one's work.

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

from mmserve.errors import (
    DeadlineExceededError,
    MmserveError,
    StepFailedError,
    WorkflowError,
)
from mmserve.gateway.contract import ModelGateway
from mmserve.registry import Registry, registry
from mmserve.tracing import step_finish, traced, traced_gateway
from mmserve.workflow.language.conditions import evaluate, parse_condition
from mmserve.workflow.language.definition import Workflow
from mmserve.workflow.language.input_values import validate_inputs
from mmserve.workflow.language.references import parse_template, walk_strings
from mmserve.workflow.run.cache import StepCache, process_cache
from mmserve.workflow.run.context import StepContext, resolve_store
from mmserve.workflow.run.engine_steps import DEFAULT_FOR_EACH_CONCURRENCY, StepRunner, StepState
from mmserve.workflow.run.events import EventHook, ItemProgress, StepFinished, StepStarted, emit
from mmserve.workflow.run.resolve import ResolveError, lookup, resolve
from mmserve.workflow.run.result import (
    ItemStatus,
    RunResult,
    StepStatus,
    TraceEntry,
    attach_trace,
)


class Engine:
    """Runs workflows against a model gateway (local models or Ray Serve handles).

    ``store`` is the vector store the steps reach (``ctx.store``), or a
    :class:`~mmserve.workflow.run.context.LazyStore` that opens it when a step first does;
    ``cache`` holds ``cache: true`` results (the process's LRU unless given);
    ``for_each_concurrency`` bounds the items of a for_each step that run at once.
    """

    def __init__(
        self,
        gateway: ModelGateway,
        *,
        store: Any = None,
        registry: Registry = registry,
        cache: StepCache | None = None,
        for_each_concurrency: int = DEFAULT_FOR_EACH_CONCURRENCY,
    ) -> None:
        self.gateway = traced_gateway(gateway)  # model calls in spans when tracing is on
        #: the store as given: the steps' contexts open a LazyStore only when they read it
        self.given_store = store
        self.registry = registry
        self.cache = process_cache if cache is None else cache
        self.for_each_concurrency = for_each_concurrency

    @property
    def store(self) -> Any:
        """The vector store (opened now when it was given as a LazyStore); None when none."""
        return resolve_store(self.given_store)

    async def check(self, workflow: Workflow, inputs: Mapping[str, Any]) -> None:
        """Refuse ``inputs`` as :meth:`run` would before its first step, running nothing:
        :class:`InputError` for bad inputs, or a step's ``check_ahead`` refusal (a job's
        inputs are checked so at submit: a bad input is a 4xx then, never a failed job)."""
        values = validate_inputs(workflow.spec.inputs, inputs)
        classes = {sid: workflow.step_class(sid, self.registry) for sid in workflow.spec.steps}
        await _Run(self, workflow, values, classes, use_cache=True).check_ahead()

    async def run(
        self,
        workflow: Workflow,
        inputs: Mapping[str, Any],
        *,
        timeout_s: float | None = None,
        use_cache: bool = True,
        on_event: EventHook | None = None,
    ) -> RunResult:
        """Validate ``inputs``, run every step, return the outputs and the trace.

        ``use_cache=False`` computes every ``cache: true`` step afresh (and refreshes its
        entry). Raises :class:`InputError` for bad inputs (before any step runs), the step's
        own :class:`MmserveError` or a :class:`StepFailedError` wrapping anything else, and
        :class:`DeadlineExceededError` naming the steps still running at ``timeout_s``.
        ``on_event`` hears each step start and finish and each for_each item's end
        (:mod:`mmserve.workflow.run.events`).
        """
        values = validate_inputs(workflow.spec.inputs, inputs)
        classes = {sid: workflow.step_class(sid, self.registry) for sid in workflow.spec.steps}
        run = _Run(self, workflow, values, classes, use_cache=use_cache)
        run.on_event = on_event
        return await traced(
            run.execute(timeout_s), f"workflow {workflow.name}", {"mmserve.workflow": workflow.name}
        )


class _Run:
    """The state of one run: finished outputs, running tasks, trace entries."""

    def __init__(
        self,
        engine: Engine,
        workflow: Workflow,
        values: dict[str, Any],
        classes: dict[str, Any],
        *,
        use_cache: bool,
    ) -> None:
        self.engine = engine
        self.workflow = workflow
        self.values = values
        self.classes = classes
        #: step id -> its Outputs (a list of them for a for_each step)
        self.outputs: dict[str, Any] = {}
        self.steps = StepRunner(
            gateway=engine.gateway,
            store=engine.given_store,
            cache=engine.cache,
            for_each_concurrency=engine.for_each_concurrency,
            nested_run=engine.run,
            values=values,
            classes=classes,
            outputs=self.outputs,
            use_cache=use_cache,
            item_finished=self._item_finished,
        )
        #: step id -> why it was skipped
        self.skipped: dict[str, str] = {}
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.trace: dict[str, TraceEntry] = {}
        self.states: dict[str, StepState] = {}
        self.on_event: EventHook | None = None
        #: events handed to ``on_event`` from synchronous places (items, skips), in order
        self.emitting: list[asyncio.Future[None]] = []

    async def execute(self, timeout_s: float | None) -> RunResult:
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        waiting = list(self.workflow.order)
        try:
            await self.check_ahead()
            while waiting or self.tasks:
                self._start_ready(waiting)
                if not self.tasks:
                    continue
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
                name: self._output(value) for name, value in self.workflow.spec.outputs.items()
            }
        except ResolveError as exc:
            error = WorkflowError(f"workflow {self.workflow.name!r}: output {exc}")
            attach_trace(error, self._trace())
            raise error from exc
        await self._emitted()  # steps skipped last
        return RunResult(outputs=outputs, trace=self._trace())

    async def check_ahead(self) -> None:
        """Before any step runs, let the later steps refuse what is already known to fail.

        A step class may define ``async check_ahead(known, ctx)`` (a classmethod): ``known``
        holds those of its inputs that depend only on the workflow's inputs and literals
        (unvalidated). The ``retrieve`` step uses it to answer an unknown collection with a
        404 before the steps feeding its query have run. Steps that start at once anyway, and
        steps with a ``when`` (they may never run), are not checked ahead.
        """
        checks = []
        for step, spec in self.workflow.spec.steps.items():
            check = getattr(self.classes[step], "check_ahead", None)
            if check is None or not self.workflow.dependencies[step] or spec.when is not None:
                continue
            known = {}
            for key, value in spec.with_.items():
                try:
                    known[key] = resolve(value, self.values, {})
                except (ResolveError, KeyError):
                    continue  # it refers to a step's output: known only when that step ran
            context = StepContext(step, self.engine.gateway, self.engine.given_store)
            checks.append(check(known, context))
        await asyncio.gather(*checks)

    def _output(self, value: Any) -> Any:
        """An output's value; null when it refers to a skipped step."""
        roots = {
            ref.root
            for _, text in walk_strings(value)
            if "${" in text
            for ref in parse_template(text).references
        }
        if roots & self.skipped.keys():
            return None
        return resolve(value, self.values, self.outputs)

    def _start_ready(self, waiting: list[str]) -> None:
        """Start (or skip) every waiting step whose dependencies have all finished."""
        progressed = True
        while progressed:
            progressed = False
            finished = self.outputs.keys() | self.skipped.keys()
            for step in [s for s in waiting if self.workflow.dependencies[s] <= finished]:
                waiting.remove(step)
                reason = self._skip_reason(step)
                if reason is not None:
                    self._skip(step, reason)
                    progressed = True
                    continue
                self.tasks[step] = asyncio.create_task(self._observed(step), name=step)

    def _skip_reason(self, step: str) -> str | None:
        spec = self.workflow.spec.steps[step]
        skipped = sorted(self.workflow.dependencies[step] & self.skipped.keys())
        if skipped:
            return f"it needs {', '.join(repr(s) for s in skipped)}, which did not run"
        if spec.when is None:
            return None
        try:
            holds = evaluate(
                parse_condition(spec.when), lambda ref: lookup(ref, self.values, self.outputs)
            )
        except ResolveError as exc:
            error = StepFailedError(step=step, uses=spec.uses, reason=f"when: {exc}")
            self._record(step, "error", str(error), StepState(time.perf_counter()))
            raise error from None
        return None if holds else f"when: {spec.when} is false"

    def _skip(self, step: str, reason: str) -> None:
        self.skipped[step] = reason
        spec = self.workflow.spec.steps[step]
        entry = TraceEntry(step=step, uses=spec.uses, status="skipped", wall_ms=0.0, error=reason)
        self._step_finished(step, entry)
        self._emit_soon(StepFinished(step=step, entry=entry))

    def _collect(self, done: set[asyncio.Task[Any]]) -> None:
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

    # -- event points: one place where a step starts, one where it ends, one per item ----

    def _step_started(self, step: str) -> StepState:
        state = StepState(started=time.perf_counter())
        self.states[step] = state
        return state

    def _step_finished(self, step: str, entry: TraceEntry) -> None:
        self.trace[step] = entry

    def _item_finished(self, step: str, index: int, status: ItemStatus) -> None:
        statuses = self.states[step].item_status
        if statuses is None:
            return
        statuses[index] = status
        done = sum(1 for s in statuses if s != "pending")
        self._emit_soon(
            ItemProgress(step=step, index=index, status=status, done=done, total=len(statuses))
        )

    def _emit_soon(self, event: ItemProgress | StepFinished) -> None:
        """Hand ``event`` to ``on_event`` from a synchronous place; :meth:`_emitted` awaits it."""
        if self.on_event is not None:
            self.emitting.append(asyncio.ensure_future(emit(self.on_event, event)))

    async def _emitted(self) -> None:
        """Wait until every event handed over so far has been heard (in order)."""
        pending, self.emitting = self.emitting, []
        await asyncio.gather(*pending)

    async def _observed(self, step: str) -> Any:
        """Run ``step``, telling ``on_event`` when it starts and how it finished."""
        await emit(self.on_event, StepStarted(step=step, uses=self.workflow.spec.steps[step].uses))
        uses = self.workflow.spec.steps[step].uses
        attributes = {"mmserve.workflow": self.workflow.name, "mmserve.step": step}
        finish = step_finish(lambda: self.trace.get(step))
        try:
            return await traced(
                self._step(step), f"step {step}", {**attributes, "mmserve.step.kind": uses}, finish
            )
        finally:
            await self._emitted()  # its items' progress comes before its end
            entry = self.trace.get(step)
            if entry is not None:
                await emit(self.on_event, StepFinished(step=step, entry=entry))

    def _record(self, step: str, status: StepStatus, error: str | None, state: StepState) -> None:
        spec = self.workflow.spec.steps[step]
        sizes = [size for call in state.calls for size in call.ctx.batch_sizes]
        cached = [call.cached for call in state.calls if call.cached is not None]
        entry = TraceEntry(
            step=step,
            uses=spec.uses,
            status=status,
            wall_ms=(time.perf_counter() - state.started) * 1000,
            batch_size=max(sizes) if sizes else None,
            error=error,
            attempts=(max((c.attempts for c in state.calls), default=0) if spec.retry else None),
            cached=all(cached) if spec.cache and cached else None,
            items=None if state.item_status is None else len(state.item_status),
            item_status=None if state.item_status is None else list(state.item_status),
        )
        self._step_finished(step, entry)

    # -- running one step ----------------------------------------------------------------

    async def _step(self, step: str) -> Any:
        spec = self.workflow.spec.steps[step]
        state = self._step_started(step)
        try:
            result = await self.steps.run(step, spec, state)
        except asyncio.CancelledError:
            self._record(
                step,
                "cancelled",
                "stopped before it finished: a failure elsewhere, the deadline or the caller",
                state,
            )
            raise
        except MmserveError as exc:
            self._record(step, "error", str(exc), state)
            raise
        except Exception as exc:
            error = StepFailedError(
                step=step, uses=spec.uses, reason=f"{type(exc).__name__}: {exc}"
            )
            self._record(step, "error", str(error), state)
            raise error from exc
        self._record(step, "ok", None, state)
        return result


__all__ = ["Engine"]
