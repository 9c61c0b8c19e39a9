"""Run the served app from a process: ``mmserve serve`` and tests use this.

:class:`ServeSession` checks the config (:mod:`mmserve.deploy.preflight`), starts an embedded
local Ray when no address is given (or connects to ``address``), checks that every replica
fits on the cluster's nodes (:mod:`mmserve.deploy.capacity`; it refuses with a table of what
does not, before Serve starts, unless ``allow_pending``), deploys the app and waits until every
deployment is ready (what ``GET /v1/ready`` reports; with replicas left pending, until each
deployment with room has a replica running). A replica that fails to start with a
:class:`~mmserve.errors.ModelLoadError` fails the deploy at once, with its reason: its model
cannot load from its source, and the retries Serve would make first (up to three a replica,
each a new process that imports torch again) cannot help. Serve's options are left as they
are: it still retries other failed starts, and replaces replicas that die once the app runs.
A Ray it starts gets the switches for ``server.proxy`` (Serve's Python proxy or its HAProxy
ingress) and ``server.transport`` in its environment (:mod:`mmserve.deploy.front_door`).
:meth:`ServeSession.stop` undoes exactly what ``start`` did: an embedded Ray is shut down with
Serve; on a cluster, Serve is shut down if this session started it, else only this app is
deleted.

Ray's auth mode is left as the user set it. Unset, Ray 2.60 turns its token authentication
on for a new local cluster (creating ``~/.ray/auth_token``), which an embedded Ray keeps: its
ports listen on the machine's network address, not only on localhost. ``RAY_AUTH_MODE=disabled``
opts out (the test suites do); forcing ``token`` without a token file makes Ray fail to start.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any

import ray
from ray import serve
from ray.serve._private.constants import SERVE_LOGGER_NAME
from ray.serve.context import _get_global_client
from ray.serve.schema import ApplicationStatusOverview

from mmserve.config import AppConfig
from mmserve.deploy.capacity import Fit, asks_of, fit, nodes_from_ray
from mmserve.deploy.capacity_table import check_capacity
from mmserve.deploy.front_door import check_front_door, embedded_ray_env
from mmserve.deploy.preflight import (
    check_address_reachable,
    check_models,
    check_port_free,
    check_workflows,
    embedded_cpus,
)
from mmserve.errors import ModelLoadError, ServingError
from mmserve.http.api import not_ready_message
from mmserve.serve.app import build_app
from mmserve.serve.health import app_health
from mmserve.serve.plan import APP_NAME, scale_to_zero_deployments
from mmserve.serve.status import status_name

logger = logging.getLogger(__name__)

_FAILED = {"DEPLOY_FAILED", "UNHEALTHY"}
#: How a replica's ModelLoadError ends the traceback that Serve keeps in a deployment's message.
_LOAD_ERROR = f"{ModelLoadError.__module__}.{ModelLoadError.__qualname__}: "
#: Seconds between two reads of Serve's status while the app deploys (Serve's own wait: 1 s).
POLL_S = 0.5
_DEPLOY_HINT = "the replica log above has the full traceback"

#: Exit status of a clean stop by SIGTERM or Ctrl-C.
STOPPED_BY_SIGNAL = 0


class Stop(BaseException):
    """Raised in the main thread by SIGINT/SIGTERM; a BaseException so nothing swallows it."""


class ServeSession:
    """One deployment of the app, started by this process (a context manager)."""

    def __init__(
        self,
        config: AppConfig,
        *,
        host: str | None = None,
        port: int | None = None,
        address: str | None = None,
        ray_options: dict[str, Any] | None = None,
        on_ray_started: Callable[[], None] | None = None,
        proxy_location: str | None = None,
        allow_pending: bool = False,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        """``on_ray_started`` runs right after this process starts or joins Ray (Ray's
        core worker installs its own SIGTERM handler then; the runner re-installs its own).
        ``allow_pending``: deploy even when the capacity preflight finds replicas with no
        room (:mod:`mmserve.deploy.capacity`), printing its table through ``announce``,
        and wait only for the deployments with a replica that fits."""
        self.config = config
        self.host = host or config.server.host
        self.port = config.server.port if port is None else port
        self.address = address
        self._ray_options = dict(ray_options or {})
        self._started_ray = False
        self._started_serve = False
        self._deployed = False
        self._on_ray_started = on_ray_started
        #: Serve's default is a proxy on every node; "HeadOnly" suits several nodes on one host.
        self.proxy_location = proxy_location
        self.allow_pending = allow_pending
        self._announce = announce or logger.warning
        #: The capacity preflight's outcome, once :meth:`start` has joined or started Ray.
        self.capacity: Fit | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def check(self) -> int:
        """The checks that need no Ray; returns the number of workflows."""
        # Models first: a hub model without network is the likeliest first-run failure.
        check_models(self.config)
        if self.address is None:
            check_front_door(self.config)
        return check_workflows(self.config)

    def start(self) -> str:
        """Check, start or join Ray, deploy, wait until ready; returns the base URL."""
        self.check()
        if not ray.is_initialized():
            self._init_ray()
        if self._on_ray_started is not None:
            self._on_ray_started()
        self.capacity = fit(asks_of(self.config), nodes_from_ray(ray.nodes()))
        warning = check_capacity(self.capacity, allow_pending=self.allow_pending)
        if warning:
            self._announce(warning)
        status = serve.status()
        self._started_serve = not (status.proxies or status.applications)
        try:
            serve.start(
                http_options={"host": self.host, "port": self.port},
                proxy_location=self.proxy_location,
            )
        except TimeoutError as exc:  # Serve waits a fixed 60 s for its HTTP proxies
            raise ServingError(
                f"Serve's HTTP proxy did not start: {exc}",
                hint="the machine may be too busy to start it in time; the proxy's log is "
                "under /tmp/ray/session_latest/logs/serve",
            ) from exc
        self._deployed = True
        pending = not self.capacity.fits
        target = serve.RunTarget(build_app(self.config), name=APP_NAME, route_prefix="/")
        # Not Serve's own wait for RUNNING: it sits through every retry of a replica that
        # cannot load its model; wait_running stops at the first such failure.
        serve.run_many([target], wait_for_applications_running=False)
        # with replicas that cannot be placed, Serve would wait for them forever
        if not pending:
            wait_running(_read_app)
            _proxies_serving()
        self._wait_ready(waiting_for=self._placeable() if pending else None)
        return self.url

    def _placeable(self) -> set[str]:
        """The deployments with at least one replica that the preflight found room for."""
        assert self.capacity is not None
        return {row.ask.deployment for row in self.capacity.rows if row.placed > 0}

    def _wait_ready(self, timeout_s: float = 600.0, waiting_for: set[str] | None = None) -> None:
        """Block until ``GET /v1/ready`` would answer 200 (``serve.run`` returns when Serve
        calls the app running; this checks what the API reports, scale-to-zero included);
        with ``waiting_for``, until each of those deployments has a replica running."""
        deadline = time.monotonic() + timeout_s
        while True:
            _raise_on_load_failure(_read_app())
            health = app_health(APP_NAME, {}, scale_to_zero_deployments(self.config))
            if health.ready:
                return
            running = {name for name, d in health.deployments.items() if d.replicas > 0}
            if waiting_for is not None and health.deployments and waiting_for <= running:
                return
            if health.status == "unhealthy" or time.monotonic() > deadline:
                raise ServingError(
                    f"the app is not ready: {not_ready_message(health)}",
                    hint="the replica logs have the details",
                )
            time.sleep(0.5)

    def _init_ray(self) -> None:
        if self.address is None:
            check_port_free(self.host, self.port)
            options: dict[str, Any] = {
                # "local": always a new Ray of our own, never one that happens to be running
                "address": "local",
                "num_cpus": embedded_cpus(self.config, os.cpu_count() or 1),
                "include_dashboard": False,
            }
            where = "start a local Ray"
        else:
            check_address_reachable(self.address)
            options = {"address": self.address}
            where = f"connect to the Ray cluster at {self.address!r}"
        try:
            if self.address is None:
                # Ray's processes (the HTTP proxy among them) inherit this environment.
                with _environ(embedded_ray_env(self.config)):
                    ray.init(**{**options, **self._ray_options})
            else:
                ray.init(**{**options, **self._ray_options})
        # Ray raises a bare Exception when its raylet does not start in time (a busy machine)
        except Exception as exc:
            raise ServingError(
                f"could not {where}: {exc}",
                hint="check the address and that the cluster runs Ray "
                f"{ray.__version__}; Ray's own logs are under /tmp/ray/session_latest/logs",
            ) from exc
        self._started_ray = self.address is None

    def stop(self) -> None:
        """Undo :meth:`start`: only what this session started is stopped."""
        try:
            if ray.is_initialized() and (self._started_ray or self._started_serve):
                serve.shutdown()
            elif self._deployed and ray.is_initialized():
                serve.delete(APP_NAME)  # Serve was running before: leave it, and its apps
        finally:
            self._deployed = False
            self._started_serve = False
            if ray.is_initialized() and (self._started_ray or self.address is not None):
                ray.shutdown()
            self._started_ray = False

    def __enter__(self) -> ServeSession:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block, then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass(frozen=True)
class DeployFailure:
    """Why one deployment of the app is failing to deploy."""

    deployment: str
    #: The exception's line from Serve's message, without the exception's dotted class name.
    reason: str
    #: A replica failed to start with a ModelLoadError: retrying it cannot help.
    model_load: bool

    def __str__(self) -> str:
        return f"deployment {self.deployment!r}: {self.reason}"


def _exception_text(line: str) -> str:
    """``mmserve.errors.ModelLoadError: could not ...`` -> ``could not ...``."""
    head, sep, tail = line.partition(": ")
    return tail if sep and "." in head and " " not in head else line


def deploy_failures(app: ApplicationStatusOverview | None) -> list[DeployFailure]:
    """The failing deployments of ``app`` (Serve's status of it), by name: each one whose
    message (Serve keeps the replica's traceback in it) names a ModelLoadError, whatever its
    status (Serve calls it UPDATING while it retries), and each one Serve marked failed, with
    the last line of its message (the exception), so the user reads the cause rather than
    Serve's summary."""
    if app is None:
        return []
    failures = []
    for name, overview in sorted(app.deployments.items()):
        lines = [line.strip() for line in (overview.message or "").splitlines() if line.strip()]
        load = next((line for line in reversed(lines) if line.startswith(_LOAD_ERROR)), None)
        if load is not None:
            failures.append(DeployFailure(name, _exception_text(load), model_load=True))
        elif status_name(overview.status) in _FAILED and lines:
            failures.append(DeployFailure(name, _exception_text(lines[-1]), model_load=False))
    return failures


def _failed_to_deploy(reason: str) -> ServingError:
    return ServingError(f"the app failed to deploy: {reason}", hint=_DEPLOY_HINT)


def _raise_on_load_failure(app: ApplicationStatusOverview | None) -> None:
    loads = [failure for failure in deploy_failures(app) if failure.model_load]
    if loads:
        raise _failed_to_deploy("; ".join(map(str, loads)))


def wait_running(
    read_app: Callable[[], ApplicationStatusOverview | None],
    *,
    poll_s: float = POLL_S,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Block until Serve calls the app RUNNING (what ``serve.run`` waits for), reading its
    status with ``read_app``; raise ServingError at the first replica that failed to start
    with a ModelLoadError, before Serve retries it, or when Serve gives up on the app."""
    while True:
        app = read_app()
        if app is None:
            raise _failed_to_deploy("Serve has no such application (was it deleted?)")
        status = status_name(app.status)
        if status == "RUNNING":
            return
        _raise_on_load_failure(app)
        if status == "DEPLOY_FAILED":
            failures = deploy_failures(app)
            raise _failed_to_deploy("; ".join(map(str, failures)) or app.message or status)
        sleep(poll_s)


def _read_app() -> ApplicationStatusOverview | None:
    return serve.status().applications.get(APP_NAME)


def _proxies_serving() -> None:
    """What ``serve.run`` does once the app runs: wait until the proxies route to it (Serve's
    HAProxy ingress needs a moment for its backends), and log that it is ready."""
    client = _get_global_client()
    if client is None:  # only in Serve's local testing mode, which has no proxies
        return
    client.wait_for_proxies_serving(wait_for_applications_running=True)
    logging.getLogger(SERVE_LOGGER_NAME).info(
        "Application %r is ready at %s/.", APP_NAME, client.root_url
    )


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def serve_until_stopped(session: ServeSession, *, announce: Any = print) -> int:
    """Start ``session``, announce its URL, block until SIGINT/SIGTERM, then stop it."""
    previous: dict[int, Any] = {}

    def install() -> None:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                handler = signal.signal(signum, _raise_stop)
                previous.setdefault(signum, handler)

    install()
    session._on_ray_started = install
    try:
        url = session.start()
        announce(f"mmserve is serving {url}  (API: {url}/docs; Ctrl-C to stop)")
        while True:
            time.sleep(3600)
    except Stop as stop:
        announce(f"stopping ({stop})...")
        return STOPPED_BY_SIGNAL
    finally:
        # A second signal during shutdown must not leave Ray half-stopped.
        for signum in previous:
            signal.signal(signum, signal.SIG_IGN)
        session.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


__all__ = [
    "STOPPED_BY_SIGNAL",
    "DeployFailure",
    "ServeSession",
    "Stop",
    "deploy_failures",
    "serve_until_stopped",
    "wait_running",
]
