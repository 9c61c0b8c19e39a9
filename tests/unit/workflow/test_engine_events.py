"""The engine's event hook: one event when each step starts, one with its trace entry when it
ends, sync or async hooks, and none for steps that never started."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mmserve.errors import StepFailedError
from mmserve.workflow import (
    RUN_EVENT,
    Engine,
    ItemProgress,
    RunEvent,
    StepFinished,
    StepStarted,
    load_workflow_text,
    trace_of,
)

pytestmark = pytest.mark.unit

CHAIN = """
name: chain
inputs:
  text: {type: string}
steps:
  first: {uses: echo, with: {text: "${inputs.text}"}}
  second: {uses: count, with: {text: "${first.text}"}}
outputs: {n: "${second.count}"}
"""


def test_each_step_reports_its_start_then_its_trace_entry(gateway, test_registry) -> None:
    events: list[RunEvent] = []
    workflow = load_workflow_text(CHAIN, registry=test_registry)
    engine = Engine(gateway, registry=test_registry)
    result = asyncio.run(engine.run(workflow, {"text": "a b c"}, on_event=events.append))
    assert [(e.type, e.step) for e in events] == [
        ("step_started", "first"),
        ("step_finished", "first"),
        ("step_started", "second"),
        ("step_finished", "second"),
    ]
    assert isinstance(events[0], StepStarted) and events[0].uses == "echo"
    finished = [e.entry for e in events if isinstance(e, StepFinished)]
    assert finished == result.trace  # the same entries the run's trace has
    assert result.outputs == {"n": 3}


def test_an_async_hook_is_awaited_and_failures_are_reported(gateway, test_registry) -> None:
    workflow = load_workflow_text(
        """
        name: fails
        steps:
          bad: {uses: boom}
          after: {uses: echo, with: {text: "${bad.text}"}}
        outputs: {t: "${after.text}"}
        """,
        registry=test_registry,
    )
    heard: list[tuple[str, str, Any]] = []

    async def hook(event: RunEvent) -> None:
        await asyncio.sleep(0)
        status = event.entry.status if isinstance(event, StepFinished) else None
        heard.append((event.type, event.step, status))

    with pytest.raises(StepFailedError) as info:
        asyncio.run(Engine(gateway, registry=test_registry).run(workflow, {}, on_event=hook))
    # the dependant never started, so it has no events (the error's trace has it as skipped)
    assert heard == [("step_started", "bad", None), ("step_finished", "bad", "error")]
    assert [t.status for t in trace_of(info.value) or []] == ["error", "skipped"]


def test_events_read_back_from_their_json() -> None:
    item = ItemProgress(step="answers", index=2, status="ok", done=3, total=5)
    assert RUN_EVENT.validate_json(item.model_dump_json()) == item
    started = StepStarted(step="a", uses="echo")
    assert RUN_EVENT.validate_python(started.model_dump()) == started
