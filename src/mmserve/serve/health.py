"""Readiness of the served app's deployments, from Serve's own status.

A restart of the Serve controller (SIGKILL, its node lost) leaves the replicas and proxies
serving: the fault suite saw no failed request across it. Serve's status says otherwise for a
while: the new controller finds the replicas again (state ``RECOVERING``, deployments
``UPDATING``), may briefly report no application at all, and does not answer while it is
down. :func:`health_of` therefore counts recovering replicas as serving, and
:class:`HealthReader` bounds the wait for the controller and answers its last report when the
controller is away or has not yet recovered the app, so neither ``/v1/health`` (liveness) nor
``/v1/ready`` (a load balancer's probe) flips to "starting" while every request succeeds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping

from ray import serve
from ray.serve.schema import ApplicationStatusOverview

from mmserve.http.schemas.workflows import DeploymentHealth, HealthResponse
from mmserve.serve.status import status_name

#: Deployment states in which requests are served (scaling keeps serving).
_SERVING = {"HEALTHY", "UPSCALING", "DOWNSCALING"}
_FAILED = {"UNHEALTHY", "DEPLOY_FAILED"}
#: A deployment the controller is re-attaching to after its restart: its replicas serve.
_RECOVERING = "RECOVERING"
#: How long a health read waits for the Serve controller before answering its last report.
STATUS_TIMEOUT_S = 2.0

log = logging.getLogger(__name__)


def health_of(
    app: ApplicationStatusOverview | None,
    models: Mapping[str, list[str]],
    scale_to_zero: Collection[str] = (),
) -> HealthResponse:
    """The health report of one Serve application; ``models`` maps deployment -> models.

    A deployment in ``scale_to_zero`` (``autoscaling.min_replicas: 0``) is ready with no
    replica running while Serve reports it serving: it has scaled to zero on purpose, and the
    next request to it starts a replica (that request waits for the cold start).
    """
    if app is None:
        return HealthResponse(status="starting", ready=False)
    deployments = {}
    for name, overview in sorted(app.deployments.items()):
        states = {status_name(state): count for state, count in overview.replica_states.items()}
        running, recovering = states.get("RUNNING", 0), states.get(_RECOVERING, 0)
        status = status_name(overview.status)
        ready = status in _SERVING and (running > 0 or name in scale_to_zero)
        message = overview.message or ""
        if status == "UPDATING" and recovering and set(states) <= {"RUNNING", _RECOVERING}:
            # the controller restarted and is finding its running replicas again
            ready = True
            message = message or "serving; Serve's controller restarted and is re-attaching"
        deployments[name] = DeploymentHealth(
            status=status,
            ready=ready,
            replicas=running + recovering,
            models=list(models.get(name, [])),
            message=message,
        )
    ready = bool(deployments) and all(d.ready for d in deployments.values())
    if ready:
        return HealthResponse(status="ok", ready=True, deployments=deployments)
    failed = any(d.status in _FAILED for d in deployments.values())
    return HealthResponse(
        status="unhealthy" if failed else "starting", ready=False, deployments=deployments
    )


def app_health(
    app_name: str, models: Mapping[str, list[str]], scale_to_zero: Collection[str] = ()
) -> HealthResponse:
    """Blocking: ask the Serve controller for ``app_name``'s status."""
    return health_of(serve.status().applications.get(app_name), models, scale_to_zero)


class HealthReader:
    """``await reader()``: the app's health read by ``read`` (blocking: asks the controller)
    in a thread, at most one read at a time, waiting at most ``timeout_s``. When the
    controller does not answer in time, fails, or reports no app after it had reported one,
    the answer is the last report, saying so in ``message``."""

    def __init__(
        self, read: Callable[[], HealthResponse], *, timeout_s: float = STATUS_TIMEOUT_S
    ) -> None:
        self._read, self._timeout_s = read, timeout_s
        self._pending: asyncio.Future[HealthResponse] | None = None
        self._last: HealthResponse | None = None

    async def __call__(self) -> HealthResponse:
        if self._pending is None or self._pending.done():
            # polls while the controller is away share one read instead of piling up threads
            self._pending = asyncio.ensure_future(asyncio.to_thread(self._read))
            # a read that ends after its caller stopped waiting still updates the last report
            self._pending.add_done_callback(self._record)
        try:
            health = await asyncio.wait_for(asyncio.shield(self._pending), self._timeout_s)
        except TimeoutError:
            return self._last_report(f"did not answer within {self._timeout_s:g} s")
        except Exception as exc:  # the controller's actor died or is restarting
            log.warning("reading Serve's status failed: %s: %s", type(exc).__name__, exc)
            return self._last_report(f"could not be asked ({type(exc).__name__})")
        if self._last is not health and self._last is not None:
            return self._last_report("reports no app yet (it is recovering its state)")
        return health

    def _record(self, read: asyncio.Future[HealthResponse]) -> None:
        if read.cancelled() or read.exception() is not None:
            return
        health = read.result()
        if health.deployments or self._last is None:
            self._last = health

    def _last_report(self, why: str) -> HealthResponse:
        if self._last is None:
            return HealthResponse(
                status="starting", ready=False, message=f"Serve's controller {why}"
            )
        return self._last.model_copy(
            update={"message": f"Serve's controller {why}; its last report"}
        )


__all__ = ["STATUS_TIMEOUT_S", "HealthReader", "app_health", "health_of"]
