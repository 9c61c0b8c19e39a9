"""The wire format of a run's progress: the events a streamed run sends, and its trace entries.

Defined once, here, for both sides: the engine (:mod:`mmserve.workflow.run.events`, which
re-exports these models and adds the hook that passes them on) emits them, the HTTP API sends
each as a Server-Sent Event (the event name is its ``type``, the data its JSON), and the
client (:mod:`mmserve.client.stream`) reads them back with :data:`RUN_EVENT`. They live in the
client package because the client imports nothing of the server's.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

StepStatus = Literal["ok", "error", "skipped", "cancelled"]
#: How one item of a for_each step ended ("cached": its result came from the cache).
ItemStatus = Literal["ok", "cached", "error", "cancelled", "pending"]

_STEP = "The step id in the workflow."


class TraceEntry(BaseModel):
    """One step of a run: how it ended, how long it took, the batch size it rode in."""

    model_config = ConfigDict(extra="forbid")

    step: str = Field(description="The step id in the workflow.")
    uses: str = Field(description="The step plugin it ran.")
    status: StepStatus = Field(
        description="ok; error (it raised); skipped (never started: a dependency failed or "
        "the run stopped first); cancelled (stopped by a failure elsewhere or the deadline)."
    )
    wall_ms: float = Field(ge=0, description="Wall time of the step, input validation included.")
    batch_size: int | None = Field(
        default=None, description="The largest model batch the step's calls rode in."
    )
    error: str | None = Field(
        default=None, description="Why it failed, or why it did not run (skipped: the reason)."
    )
    attempts: int | None = Field(
        default=None, description="Attempts made, with `retry` (the most of any item)."
    )
    cached: bool | None = Field(
        default=None, description="With `cache: true`: whether the result came from the cache."
    )
    items: int | None = Field(default=None, description="for_each: the number of items.")
    item_status: list[ItemStatus] | None = Field(
        default=None, description="for_each: how each item ended, in item order."
    )


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
#: The event names (``type``) of the models above: what a stream's ``event:`` lines carry.
EVENT_TYPES = frozenset({"step_started", "step_finished", "item_progress"})


__all__ = [
    "EVENT_TYPES",
    "RUN_EVENT",
    "ItemProgress",
    "ItemStatus",
    "RunEvent",
    "StepFinished",
    "StepStarted",
    "StepStatus",
    "TraceEntry",
]
