"""Jobs under faults on a real Ray Serve app, the shared fake app (the embedded SQLite broker):
jobs_faults.fault_drill SIGKILLs the job worker, the ingress and the store replica while 50
jobs run, and every job ends ``succeeded`` with the outputs of a synchronous run."""

from __future__ import annotations

import json
import subprocess

import pytest
import ray
from jobs_faults import fault_drill
from serve_support import MMSERVE_SERVE
from shared_fake import FakeApp

pytestmark = pytest.mark.serve


def test_jobs_survive_sigkill_of_the_worker_the_ingress_and_the_store(fake_app: FakeApp) -> None:
    fault_drill(fake_app.url)


def test_mmserve_status_shows_the_job_queue(fake_app: FakeApp) -> None:
    """`mmserve status`, joining the session's Ray as a user's would, counts the queue."""
    address = ray.get_runtime_context().gcs_address
    status = [MMSERVE_SERVE[0], "status", "--address", address]
    answer = subprocess.run([*status, "--json"], capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr
    jobs = json.loads(answer.stdout)["jobs"]
    assert jobs["workers"] >= 1
    assert jobs["queued"] + jobs["running"] == sum(
        counts["queued"] + counts["running"] for counts in jobs["by_workflow"].values()
    )
    table = subprocess.run(status, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    assert f"jobs: {jobs['queued']} queued" in table.stdout
