"""Jobs survive a restart of the whole server (docs/jobs.md, "Durability"): `mmserve serve` is
stopped (SIGTERM, then SIGKILL of whatever it left) with 20 jobs queued behind a running job of
a non-repeatable workflow, and started again on the same store: the 20 jobs all succeed, with
the outputs of a synchronous run, and the running job ends ``failed`` as ``interrupted``, its
side effect (a line appended by plugins/mmserve-journal's step) done once, never twice. On
both brokers: the embedded SQLite one and Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_support import ROOT, descendants, free_port, png_base64, serving, write_config
from shared_fake import SLOW_CHAIN, SLOW_MS

from plugin_site import installed

pytestmark = pytest.mark.serve

JOBS = 20
#: Four images of distinct colours: four distinct captions.
COLOURS = [(230, 20, 20), (20, 120, 230), (20, 230, 20), (230, 230, 20)]
#: Each of the journal chain's two caption calls takes this long, so its job is still running
#: when the server stops (20 s from its journal step: the 20 jobs are submitted well within
#: that); a stopping model replica waits for its call in flight, so a shorter call is a
#: shorter stop (it waits at most Serve's graceful shutdown timeout, 20 s).
STALL_MS = 10_000
#: Ray's setting of how long a starting node may take to register
RAY_START_WAIT = "RAY_raylet_start_wait_time_s"


def _journal_chain(journal: Path) -> str:
    return f"""
name: journal_chain
inputs:
  image: {{type: image}}
steps:
  journal:
    uses: journal
    with: {{path: "{journal}", text: "journal_chain ran"}}
  first:
    uses: caption
    with: {{image: "${{inputs.image}}", prompt: "line ${{journal.line}}", model: stalled_captioner}}
  second:
    uses: caption
    with: {{image: "${{inputs.image}}", prompt: "${{first.text}}", model: stalled_captioner}}
outputs:
  caption: ${{second.text}}
"""


def _config(folder: Path, broker: str, journal: Path) -> Path:
    (folder / "slow_chain.yaml").write_text(SLOW_CHAIN, encoding="utf-8")
    (folder / "journal_chain.yaml").write_text(_journal_chain(journal), encoding="utf-8")
    fake = {"backend": "fake", "source": "fake://", "cpus": 0.1}
    return write_config(
        folder,
        {
            "models": {
                **{r: fake for r in ("image_encoder", "text_encoder", "captioner", "vqa")},
                "slow_captioner": {
                    **fake,
                    "role": "captioner",
                    "source": f"fake://delay_ms={SLOW_MS}",
                },
                "stalled_captioner": {
                    **fake,
                    "role": "captioner",
                    "source": f"fake://delay_ms={STALL_MS}",
                    "warmup": False,  # its warm-up calls would stall too
                },
            },
            "store": {"kind": "lancedb", "path": str(folder / "store")},
            "workflows": [str(folder / "slow_chain.yaml"), str(folder / "journal_chain.yaml")],
            "agents": [],
            "jobs": {
                "broker": broker,
                # apps sharing the session's Redis need a queue (and job keys) of their own
                "queue": f"restart-{uuid.uuid4().hex[:8]}",
                "lease_s": 2.0,
                "max_concurrent_jobs": 1,
            },
        },
    )


@pytest.fixture(params=["sqlite", "redis"])
def broker(request: pytest.FixtureRequest) -> str:
    return "sqlite" if request.param == "sqlite" else str(request.getfixturevalue("redis_url"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return installed(ROOT / "plugins" / "mmserve-journal", tmp_path_factory)


def _tail(log: Path, lines: int = 60) -> str:
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _wait(what: str, check: Callable[[], bool], *, timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}\n{_tail(log)}")
        time.sleep(0.2)


def _job(url: str, job_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/v1/jobs/{job_id}", timeout=30)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _submit(url: str, workflow: str, image: str) -> str:
    answer = httpx.post(
        f"{url}/v1/workflows/{workflow}/jobs", json={"inputs": {"image": image}}, timeout=30
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def _lines(journal: Path) -> list[dict[str, Any]]:
    if not journal.exists():
        return []
    return [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]


def _start_time(pid: int) -> str | None:
    """The process's start time (/proc's stat field 22): tells a reused pid from ``pid``."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _stop(process: subprocess.Popen[bytes], log: Path) -> int:
    """SIGTERM, wait for the server to exit, then SIGKILL what is left of its process group
    and of the descendants it had; the number of processes it left behind."""
    started = {pid: _start_time(pid) for pid in descendants(process.pid)}
    assert started, "the server should run Ray's processes as its descendants"
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"`mmserve serve` did not stop within 90 s of SIGTERM\n{_tail(log)}")
    assert code == 0, _tail(log)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    left = [pid for pid, start in started.items() if start and _start_time(pid) == start]
    for pid in left:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(left)


def test_queued_jobs_survive_a_restart_and_a_running_unrepeatable_one_is_interrupted(
    broker: str, site: Path, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.jsonl"
    config = _config(tmp_path, broker, journal)
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.setdefault(RAY_START_WAIT, "300")  # s: a busy machine may take a while to start Ray
    images = [png_base64(colour) for colour in COLOURS]

    first_log = tmp_path / "serve-1.log"
    with serving(config, port=free_port(), log_path=first_log, env=env) as (process, url):
        workflows = httpx.get(f"{url}/v1/workflows", timeout=30).json()["workflows"]
        repeatable = {w["name"]: (w["repeatable"], w["side_effects"]) for w in workflows}
        assert repeatable == {"slow_chain": (True, []), "journal_chain": (False, ["journal"])}

        journalled = _submit(url, "journal_chain", images[0])
        _wait(
            "the journal_chain job to run its journal step",
            lambda: _job(url, journalled)["status"] == "running" and len(_lines(journal)) == 1,
            timeout_s=120,
            log=first_log,
        )
        queued = [_submit(url, "slow_chain", images[n % len(images)]) for n in range(JOBS)]
        statuses = [_job(url, job)["status"] for job in [journalled, *queued]]
        assert statuses == ["running"] + ["queued"] * JOBS
        left = _stop(process, first_log)
    print(f"\n{broker}: the stopped server left {left} processes to SIGKILL")

    second_log = tmp_path / "serve-2.log"
    with serving(config, port=free_port(), log_path=second_log, env=env) as (_, url):
        jobs = [journalled, *queued]
        _wait(
            "every job to end after the restart",
            lambda: all(_job(url, job)["status"] not in ("queued", "running") for job in jobs),
            timeout_s=240,
            log=second_log,
        )
        interrupted, *done = [_job(url, job) for job in jobs]
        expected = []
        for image in images:
            answer = httpx.post(
                f"{url}/v1/workflows/slow_chain/run", json={"inputs": {"image": image}}, timeout=60
            )
            assert answer.status_code == 200, answer.text
            expected.append(answer.json()["outputs"])

    assert [v["status"] for v in done] == ["succeeded"] * JOBS, [v["error"] for v in done]
    assert [v["outputs"] for v in done] == [expected[n % len(images)] for n in range(JOBS)]
    assert len({e["caption"] for e in expected}) == len(images)
    assert interrupted["status"] == "failed", interrupted
    assert interrupted["error"]["code"] == "interrupted", interrupted["error"]
    assert interrupted["error"]["side_effects"] == ["journal"]
    assert interrupted["attempts"] == 1
    assert [line["text"] for line in _lines(journal)] == ["journal_chain ran"]  # never twice
