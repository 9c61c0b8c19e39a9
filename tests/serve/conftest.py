"""Serve tier: a real Ray Serve on CPU. One in-process Ray is shared by the modules that
deploy their app in the test process (``ray_local``, see shared_ray.py); the modules that fit
the full tiny profile with an API key share one `mmserve serve` (``keyed_tiny_app``, see
shared_app.py). Nothing here stops what it did not start (never `ray stop`).

Under pytest-xdist (scripts/check runs the suite with several workers) the tier is two
groups, each run by one worker in this order, beside each other and beside the workers that
share the unit and integration tiers: :data:`RAY_GROUP` (the modules on the shared in-process
Ray) and :data:`APPS_GROUP` (the shared `mmserve serve` and the modules that start a Ray of
their own, one at a time). The scheduler below hands them out first (the largest units of
work). xdist's own ``--dist loadgroup`` cannot do this with pytest 9: it renames items by
their old ``_nodeid`` attribute, which pytest 9 no longer reads."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from shared_app import FIXTURE as APP_FIXTURE
from shared_app import SHARED, STOPS, TinyApp
from shared_fake import FIXTURE as FAKE_FIXTURE
from shared_fake import SHARED_FAKE, FakeApp
from shared_ray import FIXTURE as RAY_FIXTURE
from shared_ray import SHARED_RAY
from xdist.scheduler import LoadScopeScheduling

#: The xdist groups of the serve tier (each: one worker, one Ray at a time, in this order).
RAY_GROUP, APPS_GROUP = "serve-shared-ray", "serve-apps"
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def ray_local(request: pytest.FixtureRequest) -> Iterator[int]:
    """The session's in-process Ray and Serve (started by the first module asking, stopped
    after the last); their HTTP port. The module deploys its app there (a ServeSession on
    that port) and must delete what it deployed (the session's stop does)."""
    try:
        yield SHARED_RAY.acquire()
    finally:
        SHARED_RAY.release(_module_of(request.node))


@pytest.fixture(scope="module")
def fake_app(
    ray_local: int, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FakeApp]:
    """The shared app of the fake models on the shared Ray (see shared_fake.py), deployed by
    the first module asking and stopped after the last. Tests must leave it serving."""
    try:
        yield SHARED_FAKE.acquire(tmp_path_factory, ray_local)
    finally:
        SHARED_FAKE.release(_module_of(request.node))


@pytest.fixture(scope="module")
def keyed_tiny_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TinyApp]:
    """The shared `mmserve serve` of deployments/tiny.yaml with the API key ``shared_app.KEY``
    (a private store, every shipped workflow and agent, and the test-only workflows of
    ``shared_app.TEST_WORKFLOWS``); stopped after the last module using it. Tests must
    leave it serving, and seed the collections they read themselves."""
    try:
        yield SHARED.acquire(tmp_path_factory)
    finally:
        SHARED.release(request.node.nodeid)


@functools.cache
def group_of(module: str) -> str | None:
    """The xdist group of a test module (a path from the rootdir), None outside the tier.
    The scheduler runs in xdist's controller, which sees node ids, not fixtures: a module
    that asks for the shared in-process Ray names its fixture, ``ray_local`` (or the shared
    fake app's, ``fake_app``, deployed on that Ray)."""
    path = HERE.parent.parent / module
    if HERE not in path.parents:
        return None
    text = path.read_text(encoding="utf-8")
    return RAY_GROUP if RAY_FIXTURE in text or FAKE_FIXTURE in text else APPS_GROUP


class ServeGroups(LoadScopeScheduling):
    """xdist's load-by-scope scheduling where a serve-tier test's scope is its group and
    every other test is a scope of its own (larger scopes are handed out first)."""

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid.split("::", 1)[0]) or nodeid


@pytest.hookimpl(optionalhook=True)  # the suite also runs without xdist (-p no:xdist)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> ServeGroups:
    return ServeGroups(config, log)


def _module_of(item: pytest.Item | pytest.Collector) -> str:
    return item.nodeid.split("::", 1)[0]


def _users_of(items: list[pytest.Item], fixture: str) -> set[str]:
    return {_module_of(item) for item in items if fixture in getattr(item, "fixturenames", ())}


def _grouped(items: list[pytest.Item], users: set[str]) -> list[pytest.Item]:
    """``items`` with the modules in ``users`` run one after another, where the first of them
    would run (each module's own order is kept; a module marked ``stops_shared_app`` last)."""
    first = next(n for n, item in enumerate(items) if _module_of(item) in users)
    grouped = sorted(
        (item for item in items if _module_of(item) in users),
        key=lambda item: item.get_closest_marker(STOPS) is not None,
    )
    rest = [item for item in items if _module_of(item) not in users]
    before = [item for item in items[:first] if _module_of(item) not in users]
    return before + grouped + rest[len(before) :]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the modules sharing the in-process Ray one after another, then those sharing the
    tiny app, and count each group's users, so that each shared thing stops after its last
    user instead of staying up while other modules start their own. The serve tier comes
    first (the longest part of a run: under xdist, its worker starts it at once)."""
    SHARED_RAY.users = _users_of(items, RAY_FIXTURE)
    SHARED.users = _users_of(items, APP_FIXTURE)
    SHARED_FAKE.users = _users_of(items, FAKE_FIXTURE)
    # the fake app's users are users of the shared Ray: grouped after it, they stay inside it
    for users in (SHARED_RAY.users, SHARED.users, SHARED_FAKE.users):
        if len(users) > 1:
            items[:] = _grouped(items, users)
    served = [item for item in items if HERE in item.path.parents]
    items[:] = served + [item for item in items if HERE not in item.path.parents]


def pytest_sessionfinish() -> None:
    SHARED.close()
    SHARED_FAKE.close()
    SHARED_RAY.close()
