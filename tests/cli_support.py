"""`mmserve ARGS` in the test process: the command a user types, parsed and run by the CLI's
own Typer app (:data:`mmserve.cli.main.app`, what the ``mmserve`` console script calls), with
its exit code, stdout and stderr as a finished process would give them.

A new ``python -m mmserve`` process spends ~7 s of CPU importing torch, transformers and
diffusers before it reads its arguments; here the test worker pays that once. The CLI has
no process-wide state of its own (no logging set-up, no signal handlers for ``run``), so a
command runs here as it does in its own process. What needs a process of its own stays one:
the console script itself (tests/integration/test_cli_run.py), signals and kills
(test_ingest_sigkill.py, tests/serve), a terminal (test_cli_progress.py), and packages
installed for one run (PYTHONPATH).

An exception that escapes the CLI is written to stderr as Python would print it, with exit
code 1, so that "no traceback" assertions mean the same as for a real process.
"""

from __future__ import annotations

import os
import subprocess
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
#: What :func:`mmserve.cli.main.main` sets before it runs the app.
MAIN_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
}


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def mmserve(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``mmserve *args`` from ``cwd`` with ``env`` added to the environment."""
    from mmserve.cli.main import app

    runner = CliRunner()
    with _cwd(cwd):
        result = runner.invoke(app, list(args), env={**MAIN_ENV, **(env or {})})
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(
        ["mmserve", *args], result.exit_code, stdout=result.stdout, stderr=stderr
    )
