"""Running one step's work for the engine: for_each items, retries, the cache, sub-workflows.

The engine's run (:mod:`mmserve.workflow.run.engine`) schedules the steps and keeps the trace;
for each step it asks its :class:`StepRunner` to turn the step and its resolved inputs into a
result. The runner knows nothing of the engine: it gets what it uses (the gateway, the store,
the cache, the engine's ``run`` for nested workflows, the run's values and outputs and its
item event point) when the run makes it.
"""

from __future__ import annotations

import asyncio
from collections import ChainMap
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from mmserve.errors import (
    DeadlineExceededError,
    InputError,
    MmserveError,
    OverloadedError,
    ServiceUnavailableError,
    StepFailedError,
)
from mmserve.gateway.contract import ModelGateway
from mmserve.workflow.language.definition import Workflow, WorkflowStep
from mmserve.workflow.language.issues import pydantic_message
from mmserve.workflow.language.references import parse_template, walk_strings
from mmserve.workflow.language.spec import StepSpec
from mmserve.workflow.run.cache import StepCache, cache_key, is_deterministic
from mmserve.workflow.run.context import StepContext
from mmserve.workflow.run.resolve import ResolveError, resolve
from mmserve.workflow.run.result import ItemStatus, RunResult

#: Failures that may pass on another attempt (``retry``): never bad input.
RETRYABLE: tuple[type[MmserveError], ...] = (
    ServiceUnavailableError,
    DeadlineExceededError,
    OverloadedError,
)
#: Items of one for_each step running at once, unless the step sets ``concurrency``.
DEFAULT_FOR_EACH_CONCURRENCY = 16


@dataclass
class Call:
    """One execution of a step's work (the step, or one item of a for_each)."""

    ctx: StepContext
    attempts: int = 0
    cached: bool | None = None


@dataclass
class StepState:
    """What a running step has done so far (its trace entry is built from it)."""

    started: float
    calls: list[Call] = field(default_factory=list)
    item_status: list[ItemStatus] | None = None


class NestedRun(Protocol):
    """How a ``uses: workflow:NAME`` step runs its workflow (the engine's ``run``)."""

    def __call__(
        self, workflow: Workflow, inputs: Mapping[str, Any], *, use_cache: bool
    ) -> Awaitable[RunResult]: ...


#: The run's item event point: ``(step, index, status)`` when a for_each item ends.
ItemFinished = Callable[[str, int, ItemStatus], None]


@dataclass
class StepRunner:
    """Runs the steps' work of one run (see the module docstring)."""

    gateway: ModelGateway
    #: the store, or a LazyStore that each step's context opens when it reads ``store``
    store: Any
    cache: StepCache
    #: items of a for_each step that run at once, unless the step sets ``concurrency``
    for_each_concurrency: int
    nested_run: NestedRun
    #: the run's validated workflow inputs
    values: dict[str, Any]
    #: step id -> its plugin class
    classes: dict[str, Any]
    #: step id -> its Outputs: the run's own dict, filled by the run as steps finish
    outputs: dict[str, Any]
    use_cache: bool
    item_finished: ItemFinished

    def call(self, step: str, state: StepState) -> Call:
        """A new execution of ``step``'s work, recorded in its ``state``."""
        call = Call(StepContext(step, self.gateway, self.store))
        state.calls.append(call)
        return call

    async def run(self, step: str, spec: StepSpec, state: StepState) -> Any:
        """The result of ``step``: its Outputs (a list of them for a for_each step)."""
        if spec.for_each is not None:
            return await self._for_each(step, spec, state)
        return await self._attempts(step, spec, {}, self.call(step, state))

    async def _for_each(self, step: str, spec: StepSpec, state: StepState) -> list[Any]:
        assert spec.for_each is not None
        try:
            items = resolve(spec.for_each, self.values, self.outputs)
        except ResolveError as exc:
            raise StepFailedError(step=step, uses=spec.uses, reason=f"for_each: {exc}") from None
        if items is None:
            items = []
        if not isinstance(items, list | tuple):
            raise StepFailedError(
                step=step,
                uses=spec.uses,
                reason=f"for_each: {spec.for_each} is {type(items).__name__}, not a list",
            )
        statuses: list[ItemStatus] = ["pending"] * len(items)
        state.item_status = statuses
        calls = [self.call(step, state) for _ in items]
        gate = asyncio.Semaphore(spec.concurrency or self.for_each_concurrency)

        async def one(index: int, value: Any) -> Any:
            try:
                async with gate:
                    result = await self._attempts(step, spec, {spec.as_: value}, calls[index])
            except asyncio.CancelledError:
                self.item_finished(step, index, "cancelled")
                raise
            except BaseException:
                self.item_finished(step, index, "error")
                raise
            self.item_finished(step, index, "cached" if calls[index].cached else "ok")
            return result

        tasks = [asyncio.create_task(one(i, v)) for i, v in enumerate(items)]
        if not tasks:
            return []
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()  # no-op for finished ones
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:  # the first failure in item order
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return [task.result() for task in tasks]

    async def _attempts(
        self, step: str, spec: StepSpec, scope: dict[str, Any], call: Call
    ) -> BaseModel:
        """The step's result for one call: from the cache, or run (retried when allowed)."""
        cls = self.classes[step]
        inputs = self._inputs(step, spec, cls, scope)
        key = None
        if spec.cache and is_deterministic(cls, inputs):
            key = cache_key(spec.uses, cls, self.gateway, inputs)
            hit = self.cache.get(key) if self.use_cache else None
            call.cached = hit is not None
            if hit is not None:
                return hit
        attempts = spec.retry.attempts if spec.retry is not None else 1
        while True:
            call.attempts += 1
            try:
                result = await self._invoke(step, spec, cls, inputs, call.ctx)
                break
            except RETRYABLE:
                if call.attempts >= attempts:
                    raise
            assert spec.retry is not None
            await asyncio.sleep(spec.retry.backoff_s * 2 ** (call.attempts - 1))
        if key is not None:
            self.cache.put(key, result)
        return result

    async def _invoke(
        self, step: str, spec: StepSpec, cls: Any, inputs: BaseModel, ctx: StepContext
    ) -> BaseModel:
        timeout = asyncio.timeout(spec.timeout_s)
        try:
            async with timeout:
                if isinstance(cls, type) and issubclass(cls, WorkflowStep):
                    result: Any = await self._sub_workflow(step, spec, cls, inputs, ctx)
                else:
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

    async def _sub_workflow(
        self,
        step: str,
        spec: StepSpec,
        cls: type[WorkflowStep],
        inputs: BaseModel,
        ctx: StepContext,
    ) -> dict[str, Any]:
        """Run the workflow of a ``uses: workflow:NAME`` step as a nested run."""
        given = {name: getattr(inputs, name) for name in inputs.model_fields_set}
        try:
            result = await self.nested_run(cls.workflow, given, use_cache=self.use_cache)
        except InputError as exc:
            raise StepFailedError(step=step, uses=spec.uses, reason=exc.message) from None
        ctx.batch_sizes.extend(e.batch_size for e in result.trace if e.batch_size is not None)
        return result.outputs

    def _inputs(self, step: str, spec: StepSpec, cls: Any, scope: dict[str, Any]) -> BaseModel:
        names: Mapping[str, Any] = ChainMap(scope, self.outputs) if scope else self.outputs
        try:
            raw = {key: resolve(v, self.values, names) for key, v in spec.with_.items()}
        except ResolveError as exc:
            raise StepFailedError(step=step, uses=spec.uses, reason=str(exc)) from None
        model: type[BaseModel] = cls.Inputs
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            if not _holds_model(raw):
                raise _input_error(step, spec, exc) from None
        try:  # a step's output model into a dict or a same-shaped model: by its fields
            return model.model_validate(as_fields(raw))
        except ValidationError as exc:
            raise _input_error(step, spec, exc) from None


def _holds_model(value: Any) -> bool:
    if isinstance(value, BaseModel):
        return True
    if isinstance(value, list | tuple):
        return any(_holds_model(v) for v in value)
    if isinstance(value, Mapping):
        return any(_holds_model(v) for v in value.values())
    return False


def as_fields(value: Any) -> Any:
    """``value`` with every pydantic model replaced by a dict of its fields (recursively;
    images and other leaves stay as they are, unlike ``model_dump``'s serialisers)."""
    if isinstance(value, BaseModel):
        return {name: as_fields(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, list | tuple):
        return [as_fields(v) for v in value]
    if isinstance(value, Mapping):
        return {k: as_fields(v) for k, v in value.items()}
    return value


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


__all__ = [
    "DEFAULT_FOR_EACH_CONCURRENCY",
    "RETRYABLE",
    "Call",
    "ItemFinished",
    "NestedRun",
    "StepRunner",
    "StepState",
]
