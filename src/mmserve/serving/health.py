"""Readiness of the served app's deployments, from Serve's own status."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping

from ray import serve
from ray.serve.schema import ApplicationStatusOverview

from mmserve.serving.schemas import DeploymentHealth, HealthResponse

#: Deployment states in which requests are served (scaling keeps serving).
_SERVING = {"HEALTHY", "UPSCALING", "DOWNSCALING"}
_FAILED = {"UNHEALTHY", "DEPLOY_FAILED"}


def _name(value: object) -> str:
    return str(getattr(value, "value", value))


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
        running = sum(
            count for state, count in overview.replica_states.items() if _name(state) == "RUNNING"
        )
        status = _name(overview.status)
        deployments[name] = DeploymentHealth(
            status=status,
            ready=status in _SERVING and (running > 0 or name in scale_to_zero),
            replicas=running,
            models=list(models.get(name, [])),
            message=overview.message or "",
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


async def app_health_async(
    app_name: str, models: Mapping[str, list[str]], scale_to_zero: Collection[str] = ()
) -> HealthResponse:
    # serve.status() blocks on the controller; keep the event loop free meanwhile.
    return await asyncio.to_thread(app_health, app_name, models, scale_to_zero)


__all__ = ["app_health", "app_health_async", "health_of"]
