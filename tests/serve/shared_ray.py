"""The serve tier's one in-process Ray, shared by every module that deploys its app with
:class:`~mmserve.deploy.session.ServeSession` in the test process (``ray_local``).

Ray and Serve start when the first such module asks for them and stop after the last one;
the serve conftest runs those modules one after another, so no other Ray of the test process
is up meanwhile (the HAProxy and multi-node modules start Rays of their own, outside the
group). Each module's session deploys its app on this Serve, on its port (:attr:`SharedRay.port`,
what the fixture gives), and its stop deletes only that app: a session leaves a Serve it did
not start running (`mmserve serve --address` does the same on a cluster). One Serve controller
and proxy for the group instead of one per module.

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
from serve_support import RAY_INIT, SharedByModules, free_port

from mmserve.config import AppConfig
from mmserve.serve.plan import proxy_env

#: The fixture's name (the conftest groups the modules whose tests use it).
FIXTURE = "ray_local"
#: The API key ``test_api_served``'s app asks for, read by its replicas from this variable.
KEY_ENV, KEY = "MMSERVE_SERVE_TEST_KEY", "s3rve-test-key"


def ray_env() -> dict[str, str]:
    """The environment Ray's processes inherit: the test key and Serve's front door."""
    return {KEY_ENV: KEY, **proxy_env(AppConfig.from_dict({}))}


class SharedRay(SharedByModules[int]):
    """Starts Ray on first :meth:`acquire`, stops it when the last user releases it (a start
    that failed is tried again by the next module: Ray's own state says whether it is up)."""

    what = "the shared Ray"

    def __init__(self) -> None:
        super().__init__()
        self._env: dict[str, str] = {}
        #: Serve's HTTP port, once started: every module's app answers there.
        self.port = 0

    def acquire(self) -> int:
        """Start Ray and Serve if they are not up; returns Serve's HTTP port."""
        if ray.is_initialized():
            return self.port
        self._env = ray_env()
        os.environ.update(self._env)
        # "local": always a new Ray of our own, never one that happens to be running
        ray.init(
            **{**RAY_INIT, "address": "local"},
            _system_config={"metrics_report_interval_ms": 500},
        )
        self.port = free_port()
        # the host and port each module's ServeSession asks for (AppConfig's default host)
        host = AppConfig.from_dict({}).server.host
        serve.start(http_options={"host": host, "port": self.port})
        return self.port

    def _stop(self) -> None:
        if ray.is_initialized():
            serve.shutdown()
            ray.shutdown()
        for name in self._env:
            os.environ.pop(name, None)
        self._env = {}
        self.port = 0


#: The one shared Ray of the test session.
SHARED_RAY = SharedRay()
