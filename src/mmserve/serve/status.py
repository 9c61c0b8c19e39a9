"""The served app as an operator sees it: ``mmserve status`` prints it and the ingress's fail
fast (:mod:`mmserve.serve.fail_fast`) reads it.

:func:`read_app_view` asks the Serve controller for its instance details (the deployments'
options, each replica's state and node) and Ray for the nodes' resources; :func:`app_view_of`
turns them into an :class:`AppView`, a pure function of those answers. A replica is
``running`` (Serve's RUNNING, or RECOVERING after a controller restart), ``pending`` (STARTING
with no node yet: Ray has not placed it) or ``starting`` (placed, its constructor runs). A
pending replica that no node could take, or that the cluster has not the free resources for,
*cannot be scheduled*: :attr:`DeploymentView.why` says what it asks for and what is free,
without waiting for Serve's own warning (which comes after 30 s).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from mmserve.serve.plan import INGRESS_NAME, STORE_NAME

#: Why a model deployment cannot take a call now (see :func:`unavailable`).
Unavailable = Literal["pending", "starting", "failed", "unhealthy"]
_RUNNING = {"RUNNING", "RECOVERING"}
#: A resource amount this small is float noise in Ray's accounting.
_EPSILON = 1e-6


class ReplicaView(BaseModel):
    state: str = Field(description="running, pending (no node yet), starting, or Serve's state")
    node_id: str | None = None
    node_ip: str | None = None


class DeploymentView(BaseModel):
    name: str
    status: str = Field(description="Serve's deployment status (HEALTHY, UPDATING, ...)")
    message: str = Field("", description="Serve's message about the deployment")
    models: list[str] = Field(default_factory=list, description="the config models it serves")
    target: int = Field(0, description="the replicas Serve aims at now")
    min_replicas: int | None = Field(None, description="autoscaling's minimum, if it scales")
    max_replicas: int | None = None
    running: int = 0
    pending: int = 0
    starting: int = 0
    replicas: list[ReplicaView] = Field(default_factory=list)
    resources: dict[str, float] = Field(
        default_factory=dict, description="what each replica asks Ray for"
    )
    batch: dict[str, Any] = Field(
        default_factory=dict, description="its user_config (max_batch_size, batch_wait_timeout_s)"
    )
    max_ongoing_requests: int | None = None
    unschedulable: bool = Field(False, description="a pending replica cannot be scheduled")
    fits_no_node: bool = Field(False, description="no node of the cluster has what it asks")
    why: str = Field("", description="why a replica that is not running waits")


class JobQueueView(BaseModel):
    """The job queue as a job worker sees it (``mmserve status``)."""

    queued: int = 0
    running: int = 0
    workers: int = Field(default=0, description="job workers whose lease is current")
    by_workflow: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="workflow -> {queued, running}"
    )


class AppView(BaseModel):
    app: str
    status: str
    message: str = ""
    jobs: JobQueueView | None = Field(default=None, description="the job queue, when it runs")
    deployments: dict[str, DeploymentView] = Field(default_factory=dict)
    free: dict[str, float] = Field(
        default_factory=dict, description="resources free in the cluster"
    )
    nodes: dict[str, str] = Field(default_factory=dict, description="node id -> its address")


def status_name(value: object) -> str:
    """One of Serve's status enums (or its plain string) as its name, e.g. ``"DEPLOY_FAILED"``."""
    return str(getattr(value, "value", value))


def _amounts(resources: Mapping[str, Any]) -> dict[str, float]:
    skip = ("node:", "memory", "object_store_memory")
    return {
        k: round(float(v), 4)
        for k, v in sorted(resources.items())
        if not k.startswith(skip) and float(v) > 0
    }


def _fits(need: Mapping[str, float], have: Mapping[str, float]) -> bool:
    return all(have.get(k, 0.0) + _EPSILON >= v for k, v in need.items())


def _replica_state(replica: Mapping[str, Any]) -> str:
    state = status_name(replica.get("state"))
    if state in _RUNNING:
        return "running"
    if state == "STARTING":
        return "starting" if replica.get("node_id") else "pending"
    return state.lower()


def _models_of(name: str) -> list[str]:
    """Model deployments are named after their models (``a+b`` serves both)."""
    return [] if name in (INGRESS_NAME, STORE_NAME) else name.split("+")


def deployment_view_of(
    name: str,
    details: Mapping[str, Any],
    nodes_total: Sequence[Mapping[str, float]],
    free: Mapping[str, float],
) -> DeploymentView:
    """One deployment's view from its Serve details (``DeploymentDetails`` as a dict)."""
    config = details.get("deployment_config") or {}
    scaling = config.get("autoscaling_config") or None
    replicas = [
        ReplicaView(state=_replica_state(r), node_id=r.get("node_id"), node_ip=r.get("node_ip"))
        for r in details.get("replicas") or []
    ]
    counts = {s: sum(1 for r in replicas if r.state == s) for s in ("running", "pending")}
    counts["starting"] = sum(1 for r in replicas if r.state == "starting")
    need = _amounts(details.get("required_resources") or {})
    unschedulable, nowhere, why = False, False, ""
    if counts["pending"]:
        nowhere = not any(_fits(need, total) for total in nodes_total)
        unschedulable = nowhere or not _fits(need, free)
        if unschedulable:
            where = "no node of the cluster has that much" if nowhere else "not free now"
            why = (
                f"{counts['pending']} replica(s) cannot be scheduled: each asks for "
                f"{_show(need)}, {where} (free in the cluster: {_show(free)})"
            )
        else:
            why = f"{counts['pending']} replica(s) being placed on a node"
    elif counts["starting"] and not counts["running"]:
        why = f"{counts['starting']} replica(s) starting (loading the model)"
    return DeploymentView(
        name=name,
        status=status_name(details.get("status")),
        message=str(details.get("message") or ""),
        models=_models_of(name),
        target=int(details.get("target_num_replicas") or 0),
        min_replicas=None if scaling is None else scaling.get("min_replicas"),
        max_replicas=None if scaling is None else scaling.get("max_replicas"),
        running=counts["running"],
        pending=counts["pending"],
        starting=counts["starting"],
        replicas=replicas,
        resources=need,
        batch=dict(config.get("user_config") or {}),
        max_ongoing_requests=config.get("max_ongoing_requests"),
        unschedulable=unschedulable,
        fits_no_node=nowhere,
        why=why,
    )


def _show(resources: Mapping[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in resources.items()) + "}"


def app_view_of(
    app: str,
    details: Mapping[str, Any],
    nodes: Sequence[Mapping[str, Any]],
    free: Mapping[str, float],
) -> AppView | None:
    """The view of ``app`` from Serve's instance details (a ``ServeInstanceDetails`` dict),
    Ray's nodes (``ray.nodes()``) and the cluster's free resources; None if no such app."""
    found = (details.get("applications") or {}).get(app)
    if found is None:
        return None
    alive = [n for n in nodes if n.get("Alive")]
    totals = [_amounts(n.get("Resources") or {}) for n in alive]
    free_now = _amounts(free)
    deployments = {
        name: deployment_view_of(name, d, totals, free_now)
        for name, d in sorted((found.get("deployments") or {}).items())
    }
    return AppView(
        app=app,
        status=status_name(found.get("status")),
        message=str(found.get("message") or ""),
        deployments=deployments,
        free=free_now,
        nodes={str(n.get("NodeID")): str(n.get("NodeManagerAddress", "")) for n in alive},
    )


def read_app_view(app: str) -> AppView | None:
    """Blocking: ask the Serve controller and Ray (this process must be connected to Ray)."""
    import ray  # deferred: pulls in Ray (of the commands, only `status` needs it)
    from ray.serve.context import _get_global_client  # deferred: pulls in Ray Serve

    client = _get_global_client()
    if client is None:  # it raises when no Serve runs; None only in Serve's local testing mode
        return None
    details = client.get_serve_details()
    return app_view_of(app, details, ray.nodes(), ray.available_resources())


def unavailable(view: DeploymentView) -> tuple[Unavailable, str] | None:
    """Why ``view``'s deployment cannot take a call now, or None when it can or will soon.

    A call waits (None) when a replica runs, when the deployment scales to zero on purpose
    (the call starts one), and when Serve replaces replicas that died (UNHEALTHY with a
    replacement on its way: model calls are sent again, :mod:`.replica_retry`). It fails fast
    when a replica cannot be scheduled (while Serve replaces dead replicas: only when no node
    could ever take it), the deployment failed to deploy, its first replicas
    are still starting (UPDATING), or it is unhealthy with nothing starting."""
    if view.running:
        return None
    # resources not free now while Serve replaces dead replicas may be theirs, being released
    if view.unschedulable and (view.fits_no_node or view.status != "UNHEALTHY"):
        return "pending", view.why
    last = next((ln for ln in reversed(view.message.splitlines()) if ln.strip()), "")
    if view.status == "DEPLOY_FAILED":
        return "failed", f"its replicas failed to start: {last or 'see the replica logs'}"
    if view.min_replicas == 0:
        return None
    on_the_way = view.pending + view.starting
    if view.status == "UPDATING" and on_the_way:
        return "starting", view.why or "its replicas are starting"
    if view.status == "UNHEALTHY" and not on_the_way:
        return "unhealthy", f"no replica is running: {last or 'see the replica logs'}"
    return None


__all__ = [
    "AppView",
    "DeploymentView",
    "JobQueueView",
    "ReplicaView",
    "Unavailable",
    "app_view_of",
    "deployment_view_of",
    "read_app_view",
    "unavailable",
]
