"""Live step progress of ``mmserve run`` on stderr: a line when a step starts and when it ends.

Shown when stderr is a terminal (or with ``--progress``), so a piped or captured run prints
only its JSON on stdout. The same lines come from the local engine's event hook and from a
server's event stream (``--url``)::

    step caption: started (caption)
    step caption: ok in 41 ms (batch 1)
    step answers: item 3/16 ok
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

if TYPE_CHECKING:
    from mmserve.workflow.run.events import ItemProgress, StepFinished, StepStarted

#: The ``--progress/--no-progress`` option of ``mmserve run``; None: when stderr is a terminal.
ProgressOption = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Show each step's start and end on stderr. Default: when stderr is a terminal.",
        show_default=False,
    ),
]


def wants_progress(option: bool | None, stream: TextIO | None = None) -> bool:
    """The ``--progress`` choice, or whether ``stream`` (stderr) is a terminal."""
    if option is not None:
        return option
    stream = stream or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def describe(event: StepStarted | StepFinished | ItemProgress) -> str:
    """The progress line of one run event."""
    if event.type == "step_started":
        return f"step {event.step}: started ({event.uses})"
    if event.type == "item_progress":
        line = f"step {event.step}: item {event.done}/{event.total} {event.status}"
        return f"{line}: {event.error}" if event.error else line
    entry = event.entry
    line = f"step {event.step}: {entry.status} in {entry.wall_ms:.0f} ms"
    if entry.batch_size is not None:
        line += f" (batch {entry.batch_size})"
    return f"{line}: {entry.error}" if entry.error else line


class ProgressPrinter:
    """An event hook (and stream consumer) printing :func:`describe` lines to ``stream``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def __call__(self, event: StepStarted | StepFinished | ItemProgress) -> None:
        self.stream.write(describe(event) + "\n")
        self.stream.flush()


__all__ = ["ProgressOption", "ProgressPrinter", "describe", "wants_progress"]
