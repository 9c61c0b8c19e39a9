"""What a run reports while it runs: typed events passed to the hook given to ``Engine.run``.

The engine calls ``on_event(event)`` once when a step starts and once when it ends (with its
trace entry); a ``for_each`` step also reports each item as it finishes. The hook may be a
plain function or a coroutine function (awaited before the step goes on), so keep it quick;
an exception it raises fails the run like a failing step. The HTTP API turns these events
into Server-Sent Events, ``mmserve run`` into progress lines. The event models are the wire
format the client reads too, so they are defined once in :mod:`mmserve.client.events` and
re-exported here.

Quick start::

    async def show(event: RunEvent) -> None:
        print(event.type, event.step)

    result = await engine.run(workflow, inputs, on_event=show)
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from mmserve.client.events import RUN_EVENT, ItemProgress, RunEvent, StepFinished, StepStarted

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
