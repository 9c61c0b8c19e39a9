"""`mmserve run --url --detach` and `mmserve jobs list|show|wait|cancel`, run as a user runs
them (the CLI's own app, in this process as tests/cli_support.py runs it; in a process
without the server packages for the thin install) against the job API in process: a real job
queue, a real job worker on fake models, a real HTTP server (tests/unit/jobs_support.py).
`jobs wait` prints what `run --url` prints for the same run; every mistake is one line."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import ROOT
from jobs_support import JobsApp, jobs_app, jobs_config

from cli_support import mmserve as run_cli
from mmserve import Client
from mmserve.models.backends.fake import FAIL_MARKER

pytestmark = pytest.mark.unit

RED = ROOT / "examples" / "images" / "red_circle.png"
IMAGE = f"image=@{RED}"
#: Each fake model call takes this long: slow_chain (three calls) runs for about 1.2 s.
DELAY_MS = 400
JOB_ID = re.compile(r"[0-9a-f]{32}")
#: `mmserve ARGS` with the server packages missing, as on `pip install mmserve` (as in
#: tests/unit/cli/test_index_remote.py).
THIN = """
import sys
for name in ("torch", "ray", "transformers", "diffusers", "lancedb", "fastapi", "tokenizers"):
    sys.modules[name] = None
from mmserve.cli import main
sys.argv[0] = "mmserve"
main()
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobsApp]:
    """One job at a time, so later submits wait in the queue behind a slow one."""
    config = jobs_config(
        tmp_path_factory.mktemp("jobs-cli"), delay_ms=DELAY_MS, jobs={"max_concurrent_jobs": 1}
    )
    with jobs_app(config) as running:
        yield running


@pytest.fixture
def url(app: JobsApp) -> Iterator[str]:
    """The server's URL; jobs a test leaves queued or running are cancelled after it."""
    yield app.url
    with Client(app.url) as client:
        for view in client.jobs.list(limit=None):
            if view["status"] in ("queued", "running"):
                mmserve("jobs", "cancel", view["id"], "--url", app.url)
        deadline = time.monotonic() + 20
        while any(v["status"] in ("queued", "running") for v in client.jobs.list(limit=None)):
            assert time.monotonic() < deadline, "the queue did not empty"
            time.sleep(0.05)


def mmserve(
    *args: str, env: dict[str, str | None] | None = None, thin: bool = False
) -> subprocess.CompletedProcess[str]:
    """`mmserve ARGS` without an API key or $MMSERVE_URL (unless ``env`` sets them): in this
    process, or with ``thin`` in a process of its own without the server packages."""
    given = {"MMSERVE_API_KEY": None, "MMSERVE_URL": None, **(env or {})}
    if not thin:
        return run_cli(*args, env=given)  # type: ignore[arg-type]
    environ = {k: v for k, v in os.environ.items() if k not in given}
    environ.update({k: v for k, v in given.items() if v is not None})
    command = [sys.executable, "-c", THIN, *args]
    return subprocess.run(command, env=environ, cwd=ROOT, capture_output=True, text=True)


def ok(*args: str, **options: Any) -> str:
    done = mmserve(*args, **options)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done.stdout


def one_line_error(done: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The one line a failed command printed on stderr."""
    assert done.returncode == code, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def detach(url: str, workflow: str = "caption", *inputs: str) -> str:
    """`mmserve run WORKFLOW --url URL --detach -i ...`: the job id it printed (its only line)."""
    printed = ok("run", workflow, "--url", url, "--detach", "-i", IMAGE, *inputs)
    assert JOB_ID.fullmatch(printed.strip()) and printed.count("\n") == 1, printed
    return printed.strip()


def steps_of(trace: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(entry["step"], entry["status"]) for entry in trace]


def shown(url: str, job_id: str) -> dict[str, str]:
    """`mmserve jobs show`'s status lines, by field name."""
    lines = ok("jobs", "show", job_id, "--url", url).split("\n{", 1)[0].splitlines()
    return dict(line.split(maxsplit=1) for line in lines)


def wait_status(url: str, job_id: str, status: str) -> None:
    """Wait until the job has ``status`` (asked through the client: a quick poll)."""
    deadline = time.monotonic() + 20
    with Client(url) as client:
        job = client.jobs.get(job_id)
        while (now := job.status()["status"]) != status:
            assert now in ("queued", "running"), f"job {job_id} is {now}, not {status}"
            assert time.monotonic() < deadline, f"job {job_id} did not become {status}"
            time.sleep(0.02)


def test_detach_then_wait_prints_what_run_prints(url: str, tmp_path: Path) -> None:
    job_id = detach(url, "caption", "-i", "prompt=a shape:")
    waited = json.loads(ok("jobs", "wait", job_id, "--url", url))
    ran = json.loads(ok("run", "caption", "--url", url, "-i", IMAGE, "-i", "prompt=a shape:"))
    assert set(waited) == set(ran) == {"outputs", "trace", "request_id"}
    assert waited["outputs"] == ran["outputs"] and waited["outputs"]["caption"].startswith("a")
    assert steps_of(waited["trace"]) == steps_of(ran["trace"]) == [("caption", "ok")]

    fields = shown(url, job_id)
    assert fields["id"] == job_id and fields["status"] == "succeeded"
    assert fields["workflow"] == "caption" and fields["progress"] == "1/1 steps"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", fields["finished"])
    printed = ok("jobs", "show", job_id, "--url", url)
    answer = json.loads("{" + printed.split("\n{", 1)[1])  # then the outputs, as run prints
    assert answer["outputs"] == ran["outputs"] and steps_of(answer["trace"]) == [("caption", "ok")]
    view = json.loads(ok("jobs", "show", job_id, "--url", url, "--json"))
    assert view["id"] == job_id and view["status"] == "succeeded"
    assert view["outputs"] == ran["outputs"]

    # --url from $MMSERVE_URL; --output-dir as for run (the caption has no image: unchanged)
    again = json.loads(
        ok("jobs", "wait", job_id, "--output-dir", str(tmp_path), env={"MMSERVE_URL": url})
    )
    assert again["outputs"] == ran["outputs"]


def test_a_queued_job_cancelled_never_runs_a_running_one_stops(url: str) -> None:
    ids = [detach(url, "slow_chain") for _ in range(3)]
    queued = shown(url, ids[-1])  # two slow jobs ahead of it
    assert queued["status"] == "queued" and queued["started"] == "-"
    assert re.fullmatch(r"0/3 steps, position [01] in the queue", queued["progress"])
    assert ok("jobs", "cancel", ids[-1], "--url", url) == f"cancelled {ids[-1]}\n"
    view = json.loads(ok("jobs", "cancel", ids[1], "--url", url, "--json"))
    assert view["id"] == ids[1] and view["cancel_requested"] is True

    cancelled = shown(url, ids[-1])
    assert cancelled["status"] == "cancelled" and cancelled["started"] == "-"
    waited = one_line_error(mmserve("jobs", "wait", ids[-1], "--url", url))
    assert waited.startswith(f"error: job {ids[-1]} was cancelled: it has no result [409 job_")
    again = one_line_error(mmserve("jobs", "cancel", ids[-1], "--url", url))
    assert "409 job_finished" in again

    ok("jobs", "wait", ids[0], "--url", url)  # the queue is empty again: the next job runs
    running = detach(url, "slow_chain")
    wait_status(url, running, "running")
    asked = ok("jobs", "cancel", running, "--url", url)
    assert asked in (
        f"cancel requested: {running} is running, it stops at its next step\n",
        f"cancelled {running}\n",
    )
    wait_status(url, running, "cancelled")
    assert shown(url, running)["started"] != "-"


def test_list_filters_and_prints_a_line_a_job(url: str) -> None:
    done = detach(url)
    ok("jobs", "wait", done, "--url", url)
    running, cancelled = detach(url, "slow_chain"), detach(url, "slow_chain")
    assert ok("jobs", "cancel", cancelled, "--url", url) == f"cancelled {cancelled}\n"

    lines = ok("jobs", "list", "--url", url).splitlines()
    assert (
        lines[0]
        == f"{cancelled}  cancelled  slow_chain  {shown(url, cancelled)['created']}  0/3 steps"
    )
    assert lines[1].startswith(f"{running}  ")  # newest first
    assert lines[2].startswith(f"{done}  succeeded  caption  ") and lines[2].endswith("  1/1 steps")
    captions = ok("jobs", "list", "--url", url, "--workflow", "caption", "--status", "succeeded")
    assert done in captions and cancelled not in captions
    assert all("  succeeded  caption  " in line for line in captions.splitlines())
    assert len(ok("jobs", "list", "--url", url, "--limit", "1").splitlines()) == 1
    listed = json.loads(ok("jobs", "list", "--url", url, "--status", "cancelled", "--json"))
    assert cancelled in [v["id"] for v in listed["jobs"]]
    assert {v["status"] for v in listed["jobs"]} == {"cancelled"}
    none = ok("jobs", "list", "--url", url, "--workflow", "answer")
    assert none == "no jobs (queue one with `mmserve run NAME --url URL --detach`)\n"
    bad = one_line_error(mmserve("jobs", "list", "--url", url, "--status", "sleeping"))
    assert bad.startswith("error: ") and "422" in bad


def test_a_failed_job_prints_what_a_failed_run_prints(url: str) -> None:
    prompt = f"prompt=please {FAIL_MARKER}"
    job_id = detach(url, "caption", "-i", prompt)
    waited = mmserve("jobs", "wait", job_id, "--url", url)
    ran = mmserve("run", "caption", "--url", url, "-i", IMAGE, "-i", prompt)
    assert waited.returncode == ran.returncode == 1
    assert json.loads(waited.stdout)["error"] == json.loads(ran.stdout)["error"]
    strip = re.compile(r", request [0-9a-f]+\]$")
    assert strip.sub("]", one_line_error(waited)) == strip.sub("]", one_line_error(ran))
    fields = shown(url, job_id)
    assert fields["status"] == "failed" and FAIL_MARKER in fields["error"]


def test_wait_gives_up_after_its_timeout(url: str) -> None:
    job_id = detach(url, "slow_chain")
    late = one_line_error(mmserve("jobs", "wait", job_id, "--url", url, "--timeout", "0.2"))
    assert late.startswith(f"error: job {job_id} did not finish within 0.2 s (it is ")
    assert json.loads(ok("jobs", "wait", job_id, "--url", url))["outputs"]["caption"]


def _dead_url() -> str:
    """A URL where nothing listens (a port the system just handed out and took back)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_mistakes_are_one_clear_line(url: str) -> None:
    unknown = "0" * 32
    for command in ("show", "wait", "cancel"):
        said = one_line_error(mmserve("jobs", command, unknown, "--url", url))
        assert said.startswith(f"error: no job '{unknown}'") and "404 job_not_found" in said
    local = one_line_error(mmserve("run", "caption", "--detach", "-i", IMAGE))
    assert local.startswith("error: --detach") and "--url" in local
    usage = one_line_error(
        mmserve("run", "caption", "--url", url, "--detach", "--output-dir", "out"), code=2
    )
    assert usage.startswith("usage error: --detach")
    missing = one_line_error(mmserve("run", "no_such", "--url", url, "--detach", "-i", IMAGE))
    assert missing.startswith("error: ") and "no_such" in missing
    bad_input = one_line_error(mmserve("run", "caption", "--url", url, "--detach"))
    assert bad_input.startswith("error: ") and "image" in bad_input


def test_an_unreachable_server_is_one_line() -> None:
    dead = _dead_url()  # every command here connects as `run --url` does (jobs.connect)
    down = one_line_error(mmserve("jobs", "list", "--url", dead))
    assert down.startswith(f"error: cannot reach mmserve at {dead}")


def test_detach_needs_nothing_of_the_server_extra(url: str) -> None:
    job_id = ok("run", "caption", "--url", url, "--detach", "-i", IMAGE, thin=True).strip()
    assert JOB_ID.fullmatch(job_id)
    assert json.loads(ok("jobs", "wait", job_id, "--url", url))["outputs"]["caption"]


def test_the_jobs_commands_need_nothing_of_the_server_extra(url: str) -> None:
    job_id = detach(url)
    waited = json.loads(ok("jobs", "wait", job_id, env={"MMSERVE_URL": url}, thin=True))
    assert waited["outputs"]["caption"]


def test_the_documented_commands_work(url: str) -> None:
    """The jobs commands of docs/jobs.md and README.md, against this server."""
    text = (ROOT / "docs" / "jobs.md").read_text(encoding="utf-8")
    text += (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    lines = [
        line.split("#")[0].strip()
        for block in blocks
        for line in block.splitlines()
        if re.match(r"mmserve (jobs |run .*--detach)", line)
    ]
    assert any(" jobs wait " in line for line in lines) and any(
        "--detach" in line for line in lines
    )
    job_id = ""
    for line in lines:
        args = shlex.split(line.replace("http://127.0.0.1:8000", url))[1:]
        done = mmserve(*[job_id if arg in ("<id>", "ID") else arg for arg in args])
        if args[:2] == ["jobs", "cancel"] and done.returncode:  # it had ended already
            assert "409 job_finished" in one_line_error(done)
            continue
        assert done.returncode == 0, (line, done.stdout, done.stderr)
        if "--detach" in args:
            job_id = done.stdout.strip()
    assert JOB_ID.fullmatch(job_id)
