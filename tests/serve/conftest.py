"""Serve tier: a real Ray Serve on CPU. Each module starts what it needs once and stops only
that (never `ray stop`, never other processes); modules that fit the full tiny profile with an
API key share one app instead (``keyed_tiny_app``, see shared_app.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_support import RAY_INIT
from shared_app import FIXTURE, SHARED, TinyApp

_HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    """A private local Ray for this module; Serve and Ray are shut down after it."""
    import ray
    from ray import serve

    ray.init(**RAY_INIT)
    try:
        yield
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="module")
def keyed_tiny_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TinyApp]:
    """The shared `mmserve serve` of deployments/tiny.yaml with the API key ``shared_app.KEY``
    (a private store, every shipped workflow and agent); stopped after the last module using
    it. Tests must leave it serving, and seed the collections they read themselves."""
    try:
        yield SHARED.acquire(tmp_path_factory)
    finally:
        SHARED.release(request.node.nodeid)


def _module_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the modules that share the tiny app one after another (where the first of them
    would run; each module's own order is kept), and count them, so that the app stops after
    the last one instead of staying up while other modules start their own Ray."""
    users = [item for item in items if FIXTURE in getattr(item, "fixturenames", ())]
    SHARED.users = {_module_of(item) for item in users}
    if len(SHARED.users) < 2:
        return
    first = items.index(users[0])
    grouped = [item for item in items if _module_of(item) in SHARED.users]
    rest = [item for item in items if _module_of(item) not in SHARED.users]
    before = [item for item in items[:first] if _module_of(item) not in SHARED.users]
    items[:] = before + grouped + rest[len(before) :]


def pytest_sessionfinish() -> None:
    SHARED.close()
