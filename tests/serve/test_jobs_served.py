"""Jobs under faults on a real Ray Serve app, the shared fake app (the embedded SQLite broker):
jobs_faults.fault_drill SIGKILLs the job worker, the ingress and the store replica while 50
jobs run, and every job ends ``succeeded`` with the outputs of a synchronous run."""

from __future__ import annotations

import pytest
from jobs_faults import fault_drill
from shared_fake import FakeApp

pytestmark = pytest.mark.serve


def test_jobs_survive_sigkill_of_the_worker_the_ingress_and_the_store(fake_app: FakeApp) -> None:
    fault_drill(fake_app.url)
