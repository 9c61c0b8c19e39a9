"""A proposed fix to mmserve, measured side by side with the code as it is.

Ray Serve 2.60's ``@serve.batch`` forms the next batch as soon as the batch wait expires,
even while the previous batch is still running (the ``max_concurrent_batches`` semaphore
is taken *after* the batch is formed). mmserve's model deployment runs each batch in a
worker thread (``asyncio.to_thread``), which keeps the replica's event loop free -- so
while a 30 ms model call runs, the loop cuts the waiting requests into batches of one or
two that then queue for the model one after another. Calling the model directly in the
batch handler (as Ray Serve's batching guide does) blocks the loop during the call: the
requests that arrive meanwhile all land in the next batch. With that, the batch wait
(``batch.wait_ms``) is no longer needed to fill batches under load, and at low load it only
adds latency to every step: the ``mmserve-fix`` system runs with ``wait_ms: 0``.

``overlay(workdir)`` copies ``src/mmserve`` with that one-line change into ``workdir``; a
served system started with that folder first on ``PYTHONPATH`` (Ray workers inherit it)
runs the patched code. Returns None when the code no longer has the line to change.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmarks.suite.servers import REPO_ROOT

#: (file under src/mmserve, the text as it is, the proposed text)
PATCHES = (
    (
        "serving/deployments.py",
        "        outputs = await asyncio.to_thread(func, *args)\n",
        "        outputs = func(*args)\n",
    ),
)


def overlay(workdir: Path) -> Path | None:
    """A copy of ``src/mmserve`` with :data:`PATCHES` applied, or None if one doesn't apply."""
    target = workdir / "proposed-fix"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(REPO_ROOT / "src" / "mmserve", target / "mmserve")
    for relative, before, after in PATCHES:
        path = target / "mmserve" / relative
        text = path.read_text(encoding="utf-8")
        if text.count(before) != 1:
            return None
        path.write_text(text.replace(before, after), encoding="utf-8")
    return target
