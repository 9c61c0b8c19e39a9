"""``mmserve status``: the running app's deployments, their replicas and why any waits.

It joins the Ray cluster (``--address``, as ``mmserve serve --address`` does), reads the app's
view (:func:`mmserve.serve.status.read_app_view`) and prints a table, or the view as
JSON with ``--json``. No cluster, no Serve or no app there is one line on stderr and exit 1.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from mmserve.cli.common import friendly, need_server, print_json
from mmserve.deploy.preflight import check_address_reachable
from mmserve.errors import ServingError
from mmserve.serve.plan import JOBS_NAME
from mmserve.serve.status import (
    AppView,
    DeploymentView,
    JobQueueView,
    read_app_view,
    unavailable,
)

#: How long `mmserve status` waits for a job worker to count the queue, in seconds.
QUEUE_TIMEOUT_S = 10.0


def _connect(address: str) -> None:
    import ray  # deferred: `mmserve --help` starts without Ray

    if address != "auto":
        check_address_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ServingError(
            f"could not connect to the Ray cluster at {address!r}: {exc}",
            hint="give the address `mmserve serve --address` joined (host:port of the head)",
        ) from exc


def read_view(address: str, app: str) -> AppView:
    """The app's view from the cluster at ``address`` (joined for this call only)."""
    import ray  # deferred: `mmserve --help` starts without Ray

    _connect(address)
    try:
        try:
            view = read_app_view(app)
        except Exception as exc:  # Serve's "no Serve instance running", its controller away
            raise ServingError(
                f"could not read Serve's status at {address!r}: {exc}",
                hint="is the app deployed there? start it with `mmserve serve --address`",
            ) from exc
        if view is not None and JOBS_NAME in view.deployments:
            view.jobs = _queue(app)
    finally:
        ray.shutdown()
    if view is None:
        raise ServingError(
            f"Serve on the cluster at {address!r} runs no app named {app!r}",
            hint="start it with `mmserve serve --address`",
        )
    return view


def _queue(app: str) -> JobQueueView | None:
    """The job queue, asked of a job worker replica; None when none answers in time."""
    from ray import serve  # deferred: pulls in Ray Serve

    try:
        handle = serve.get_deployment_handle(JOBS_NAME, app_name=app)
        answer = handle.queue.remote().result(timeout_s=QUEUE_TIMEOUT_S)
    except Exception:  # no replica running (starting, restarting): the table says why
        return None
    return JobQueueView.model_validate(answer)


def _jobs_line(queue: JobQueueView) -> str:
    workflows = ", ".join(
        f"{name} {c['queued']}/{c['running']}" for name, c in sorted(queue.by_workflow.items())
    )
    line = f"jobs: {queue.queued} queued, {queue.running} running; {queue.workers} worker(s)"
    return f"{line} (queued/running: {workflows})" if workflows else line


def _batch(view: DeploymentView) -> str:
    size, wait = view.batch.get("max_batch_size"), view.batch.get("batch_wait_timeout_s")
    if size is None:
        return "-"
    return f"{size} / {float(wait or 0) * 1000:g} ms"


def _resources(view: DeploymentView) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in view.resources.items()) or "-"


def _replicas(view: DeploymentView) -> str:
    scaling = (
        f" (autoscaling {view.min_replicas}-{view.max_replicas})"
        if view.min_replicas is not None
        else ""
    )
    return f"{view.running}/{view.target}{scaling}"


def _node(view: AppView, node_id: str) -> str:
    """A node by its address, with its id's start when several nodes share the address."""
    address = view.nodes.get(node_id)
    if address is None:
        return node_id[:8]
    shared = sum(1 for other in view.nodes.values() if other == address) > 1
    return f"{address}/{node_id[:6]}" if shared else address


def render(view: AppView) -> str:
    """The terminal table of ``view``, then a line per deployment that waits."""
    header = ("DEPLOYMENT", "STATUS", "RUNNING", "PENDING", "STARTING", "NODES", "ASKS", "BATCH")
    rows = [header]
    for d in view.deployments.values():
        nodes = sorted({_node(view, r.node_id) for r in d.replicas if r.node_id})
        rows.append(
            (
                d.name,
                d.status,
                _replicas(d),
                str(d.pending),
                str(d.starting),
                ", ".join(nodes) or "-",
                _resources(d),
                _batch(d),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [f"app {view.app!r}: {view.status}"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    for d in view.deployments.values():
        reason = unavailable(d)
        if reason is not None:
            lines.append(f"{d.name}: {reason[0]}: {reason[1]}")
        elif d.why:
            lines.append(f"{d.name}: {d.why}")
        if d.message and d.status != "HEALTHY":
            lines.append(f"{d.name}: Serve says: {d.message}")
    if view.jobs is not None:
        lines.append(_jobs_line(view.jobs))
    free = ", ".join(f"{k} {v:g}" for k, v in view.free.items()) or "nothing"
    lines.append(f"free in the cluster: {free}")
    return "\n".join(line.rstrip() for line in lines)


@friendly
def status(
    address: Annotated[
        str,
        typer.Option(
            "--address",
            help="The Ray cluster the app runs on (host:port of its head, or `auto`).",
        ),
    ] = "auto",
    app: Annotated[str, typer.Option("--app", help="The Serve application's name.")] = "mmserve",
    as_json: Annotated[bool, typer.Option("--json", help="Print the view as JSON.")] = False,
) -> None:
    """Show the running app: each deployment's replicas (running, pending, starting), the
    nodes they run on, what each replica asks for, its batching, and why a replica waits."""
    need_server("status")
    view = read_view(address, app)
    if as_json:
        print_json(view.model_dump(mode="json"))
    else:
        typer.echo(render(view))


__all__ = ["read_view", "render", "status"]
