"""The ``journal`` step: append one JSON line, ``{"text": ..., "at": <unix time>}``, to a file.

Running it twice appends twice, so it declares ``side_effects = True``: a workflow using it is
not repeatable (``GET /v1/workflows`` says ``repeatable: false``), the clients never send such
a run again after a failure mid-request, and a job running it whose worker dies ends
``failed`` with the error code ``interrupted`` instead of running again.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import time
from pathlib import Path
from typing import ClassVar

from mmserve.registry import register_step
from mmserve.types import Step, StepContext, StepInputs, StepOutputs


def append_line(path: Path, text: str) -> int:
    """Append ``text``'s line to ``path`` (created with its folder if missing); its number
    (1 for the first line). A lock on the file keeps concurrent appends whole and numbered."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"text": text, "at": time.time()}, ensure_ascii=False) + "\n"
    with path.open("a+", encoding="utf-8") as journal:
        fcntl.flock(journal, fcntl.LOCK_EX)  # released when the file closes
        journal.seek(0)
        number = sum(1 for _ in journal) + 1
        journal.write(line)
        journal.flush()
    return number


@register_step("journal")
class Journal(Step):
    """Append the text as one JSON line to a file (a side effect: never run twice)."""

    side_effects: ClassVar[bool] = True

    class Inputs(StepInputs):
        path: str
        text: str

    class Outputs(StepOutputs):
        line: int

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        number = await asyncio.to_thread(append_line, Path(inputs.path), inputs.text)
        return self.Outputs(line=number)
