"""Jobs under faults with Redis as the broker and job store: an app of the fake models (the
shared fake app's config, with ``jobs.broker`` a real ``redis-server`` the test starts) on the
shared Ray, and the same drill as test_jobs_served.py (jobs_faults.fault_drill)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jobs_faults import fault_drill
from serve_support import wait_ready, write_config
from shared_fake import fake_app_config

from mmserve.config import AppConfig
from mmserve.deploy.session import ServeSession

pytestmark = pytest.mark.serve


@pytest.fixture(scope="module")
def redis_app(
    ray_local: int, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("jobs-redis")
    data = fake_app_config(folder)
    data["store"] = {"kind": "lancedb", "path": str(folder / "store")}  # no readers needed
    data["jobs"] = {**data["jobs"], "broker": redis_url, "queue": "jobs-redis-drill"}
    session = ServeSession(AppConfig.load(write_config(folder, data)), port=ray_local)
    url = session.start()
    try:
        wait_ready(url)
        yield url
    finally:
        session.stop()


def test_jobs_survive_sigkill_of_the_worker_the_ingress_and_the_store(redis_app: str) -> None:
    fault_drill(redis_app)
