"""Test-suite wide settings: offline Hugging Face, tier markers from the folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# No test may reach a model hub: the real-model path is exercised through tiny:// folders.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Ray runs its workers (replicas, Serve's proxy and controller) at nice 15. Under xdist the
# unit tiers' worker runs at nice 0 beside them on CI's two cores and would starve them: a
# proxy then misses serve.start's fixed 60 s. Every Ray a test starts inherits this.
os.environ.setdefault("RAY_worker_niceness", "0")

_TIERS = ("unit", "integration", "serve")
_ROOT = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its tier folder, so `-m unit` selects exactly tests/unit."""
    for item in items:
        parts = Path(item.fspath).resolve().relative_to(_ROOT).parts
        if parts and parts[0] in _TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis for this test session (per xdist worker): started by the first test
    asking, stopped at the end (:func:`mmserve.testing.redis.redis_server`: Debian's
    ``redis-server``, which .ci/run installs). Tests use keys of their own."""
    from mmserve.testing.redis import redis_server

    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url
