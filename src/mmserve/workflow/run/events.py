"""What a run reports while it runs: typed events passed to the hook given to ``Engine.run``.

The engine calls ``on_event(event)`` once when a step starts and once when it ends (with its
trace entry); a ``for_each`` step also reports each item as it finishes. The hook may be a
plain function or a coroutine function (awaited before the step goes on), so keep it quick;
an exception it raises fails the run like a failing step. The HTTP API turns these events
into Server-Sent Events, ``mmserve run`` into progress lines.

Quick start::

    async def show(event: RunEvent) -> None:
        print(event.type, event.step)

    result = await engine.run(workflow, inputs, on_event=show)
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from mmserve.workflow.run.result import ItemStatus, TraceEntry

_STEP = "The step id in the workflow."


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepStarted(_Event):
    """A step's inputs are ready and it starts running."""

    type: Literal["step_started"] = "step_started"
    step: str = Field(description=_STEP)
    uses: str = Field(description="The step plugin it runs.")


class StepFinished(_Event):
    """A step ended: ok, error or cancelled; ``entry`` is its line of the run's trace."""

    type: Literal["step_finished"] = "step_finished"
    step: str = Field(description=_STEP)
    entry: TraceEntry = Field(description="The step's trace entry, as the run's trace has it.")


class ItemProgress(_Event):
    """One item of a ``for_each`` step ended (items end in any order)."""

    type: Literal["item_progress"] = "item_progress"
    step: str = Field(description=_STEP)
    index: int = Field(ge=0, description="The item's position in the for_each list.")
    status: ItemStatus = Field(description="How this item ended (cached: from the step cache).")
    done: int = Field(ge=0, description="Items ended so far, this one included.")
    total: int = Field(ge=0, description="Items of the step.")
    error: str | None = Field(default=None, description="Why the item failed, if it did.")


RunEvent = Annotated[StepStarted | StepFinished | ItemProgress, Field(discriminator="type")]
#: Reads any event back from its JSON (``RUN_EVENT.validate_json(data)``).
RUN_EVENT: TypeAdapter[StepStarted | StepFinished | ItemProgress] = TypeAdapter(RunEvent)
#: The hook ``Engine.run(on_event=...)`` takes.
EventHook = Callable[[StepStarted | StepFinished | ItemProgress], Awaitable[None] | None]


async def emit(hook: EventHook | None, event: StepStarted | StepFinished | ItemProgress) -> None:
    """Hand ``event`` to ``hook`` (if any), awaiting it when it is a coroutine function."""
    if hook is None:
        return
    answer = hook(event)
    if inspect.isawaitable(answer):
        await answer


__all__ = [
    "RUN_EVENT",
    "EventHook",
    "ItemProgress",
    "RunEvent",
    "StepFinished",
    "StepStarted",
    "emit",
]
