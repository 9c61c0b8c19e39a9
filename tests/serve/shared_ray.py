"""The serve tier's one in-process Ray, shared by every module that deploys its app with
:class:`~mmserve.deploy.session.ServeSession` in the test process (``ray_local``).

Ray starts when the first such module asks for it and stops after the last one; the serve
conftest runs those modules one after another, so no other Ray of the test process is up
meanwhile (the HAProxy and multi-node modules start Rays of their own, outside the group).
Each module's session starts and stops Serve on this Ray with its own app and port.

What Ray's processes read from the environment is set once, before Ray starts: the API key
of ``test_api_served`` (its replicas read it from there, as `mmserve serve`'s do), Serve's
front door as `mmserve serve` sets it for the default transport (gRPC between the proxy and
the ingress, with gRPC's largest message), and a short metrics report interval (0.5 s
instead of 10 s) for ``test_metrics_served``.
"""

from __future__ import annotations

import os

import ray
from ray import serve
from serve_support import RAY_INIT

from mmserve.config import AppConfig
from mmserve.serve.plan import proxy_env

#: The fixture's name (the conftest groups the modules whose tests use it).
FIXTURE = "ray_local"
#: The API key ``test_api_served``'s app asks for, read by its replicas from this variable.
KEY_ENV, KEY = "MMSERVE_SERVE_TEST_KEY", "s3rve-test-key"


def ray_env() -> dict[str, str]:
    """The environment Ray's processes inherit: the test key and Serve's front door."""
    return {KEY_ENV: KEY, **proxy_env(AppConfig.from_dict({}))}


class SharedRay:
    """Starts Ray on first :meth:`acquire`, stops it when the last user releases it."""

    def __init__(self) -> None:
        self.users: set[str] = set()
        self._env: dict[str, str] = {}

    def acquire(self) -> None:
        if ray.is_initialized():
            return
        self._env = ray_env()
        os.environ.update(self._env)
        # "local": always a new Ray of our own, never one that happens to be running
        ray.init(
            **{**RAY_INIT, "address": "local"},
            _system_config={"metrics_report_interval_ms": 500},
        )

    def release(self, user: str) -> None:
        """``user`` (a module) is done; Ray stops when no module of the run is left."""
        self.users.discard(user)
        if not self.users:
            self.close()

    def close(self) -> None:
        self.users.clear()
        if ray.is_initialized():
            serve.shutdown()
            ray.shutdown()
        for name in self._env:
            os.environ.pop(name, None)
        self._env = {}


#: The one shared Ray of the test session.
SHARED_RAY = SharedRay()
