"""The capacity table people read, and the clusters ``mmserve build`` checks against.

:func:`table` lays out a :class:`~mmserve.deploy.capacity.Fit`: per deployment its replicas,
what one replica asks for, the total, what the cluster has of those kinds (in all, and on
its largest node) and why some replicas would stay pending; a last ``all`` row sums the app.
:func:`check_capacity` refuses a fit that leaves replicas pending (:class:`CapacityError`)
or, with ``--allow-pending``, returns the warning to print. The clusters ``mmserve build``
checks: the node groups of the RayService manifest it writes (:func:`nodes_of_manifest`), or
node shapes given with ``--node`` (:func:`parse_node_specs`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from mmserve.byte_sizes import parse_bytes
from mmserve.deploy.capacity import Ask, Fit, Node, Row, format_amounts
from mmserve.errors import CapacityError

HEADERS = ("deployment", "replicas", "per replica", "total", "cluster has", "why")
#: Ray gives the object store 30% of a node's memory by default; the rest is ``memory``.
_RAY_MEMORY_SHARE = 0.7


def _replicas(ask: Ask) -> str:
    if ask.autoscaling is None:
        return str(ask.replicas)
    low, high = ask.autoscaling
    return f"{ask.replicas} (autoscaling {low}-{high})"


def _has(kinds: Sequence[str], fit: Fit) -> str:
    parts = []
    for kind in kinds:
        total = fit.totals.get(kind, 0.0)
        text = format_amounts({kind: total})
        largest = max((n.resources.get(kind, 0.0) for n in fit.nodes), default=0.0)
        if len(fit.nodes) > 1 and 0 < largest < total:
            text += f" (node max {format_amounts({kind: largest}).split(' ', 1)[1]})"
        parts.append(text)
    return ", ".join(parts) or "-"


def _layout(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def table(fit: Fit, *, only_pending: bool = False) -> str:
    """The table of ``fit``'s deployments (only those with pending replicas if asked)."""
    shown: list[Row] = fit.pending if only_pending else fit.rows
    cells = [list(HEADERS)]
    for row in shown:
        per = row.ask.per_replica
        cells.append(
            [
                row.ask.deployment,
                _replicas(row.ask),
                format_amounts(per),
                format_amounts(row.ask.total()),
                _has(_ordered(per), fit),
                row.why or "fits",
            ]
        )
    asked = fit.asked()
    short = {
        k: v - fit.totals.get(k, 0.0) for k, v in asked.items() if v > fit.totals.get(k, 0.0) + 1e-9
    }
    verdict = "fits" if fit.fits else f"{len(fit.pending)} deployment(s) with replicas pending"
    if short:
        verdict += f"; short of {format_amounts(short)}"
    replicas = sum(row.ask.replicas for row in fit.rows)
    cells.append(
        ["all", str(replicas), "", format_amounts(asked), _has(_ordered(asked), fit), verdict]
    )
    return _layout(cells)


def asks_table(asks: Sequence[Ask]) -> str:
    """What each deployment asks for, with no cluster to compare against."""
    cells = [list(HEADERS[:4])]
    for ask in asks:
        cells.append(
            [
                ask.deployment,
                _replicas(ask),
                format_amounts(ask.per_replica),
                format_amounts(ask.total()),
            ]
        )
    total: dict[str, float] = {}
    for ask in asks:
        for kind, amount in ask.total().items():
            total[kind] = total.get(kind, 0.0) + amount
    cells.append(["all", str(sum(a.replicas for a in asks)), "", format_amounts(total)])
    return _layout(cells)


def _ordered(amounts: Mapping[str, float]) -> list[str]:
    order = {"CPU": 0, "GPU": 1, "memory": 2}
    return sorted(amounts, key=lambda k: (order.get(k, 3), k))


def describe_cluster(fit: Fit) -> str:
    """``2 nodes: CPU 6, vqa_node 1`` (the kinds the app asks for, and CPU and GPU)."""
    kinds = set(fit.asked()) | {"CPU", "GPU"}
    has = {k: fit.totals.get(k, 0.0) for k in kinds}
    count = len(fit.nodes)
    return f"{count} node{'s' if count != 1 else ''}: {format_amounts(has)}"


def check_capacity(fit: Fit, *, allow_pending: bool, where: str = "this Ray cluster") -> str:
    """Raise :class:`CapacityError` with the table when replicas would stay pending; with
    ``allow_pending``, return the warning to print instead ("" when everything fits)."""
    if fit.fits:
        return ""
    names = ", ".join(row.ask.deployment for row in fit.pending)
    message = (
        f"the config does not fit {where} ({describe_cluster(fit)}): "
        f"replicas of {names} would stay pending"
    )
    text = table(fit, only_pending=True)
    if allow_pending:
        return f"warning: {message}; deploying anyway (--allow-pending)\n{text}"
    raise CapacityError(
        message,
        table=text,
        hint="lower their replicas, cpus, gpus or resources, or add nodes; --allow-pending "
        "deploys anyway and leaves them pending; see 'Sizing a cluster' in docs/cluster.md",
    )


def parse_node_specs(specs: Sequence[str]) -> list[Node]:
    """Nodes from ``--node`` values: ``[count=N,]cpus=C[,gpus=G][,memory=4Gi][,NAME=AMOUNT]``
    (``CPU``/``GPU`` spell the same; any other name is a custom resource)."""
    nodes: list[Node] = []
    for spec in specs:
        count, resources = 1, {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ValueError(f"--node {spec!r}: write name=amount pairs, e.g. cpus=8,gpus=1")
            try:
                if key == "count":
                    count = int(value)
                elif key == "memory":
                    resources["memory"] = float(parse_bytes(value))
                else:
                    name = {"cpus": "CPU", "gpus": "GPU"}.get(key, key)
                    resources[name] = float(value)
            except ValueError as exc:
                raise ValueError(f"--node {spec!r}: {key}={value!r} is not an amount") from exc
        if count < 1 or any(v < 0 for v in resources.values()):
            raise ValueError(
                f"--node {spec!r}: counts and amounts cannot be negative or zero nodes"
            )
        nodes += [
            Node(name=f"node {len(nodes) + i + 1}", resources=resources) for i in range(count)
        ]
    return nodes


def _cpus(value: Any) -> float:
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _group_node(group: Mapping[str, Any]) -> dict[str, float]:
    params = group.get("rayStartParams", {})
    containers = group.get("template", {}).get("spec", {}).get("containers", [])
    limits = containers[0].get("resources", {}).get("limits", {}) if containers else {}
    resources: dict[str, float] = {}
    cpus = params.get("num-cpus", limits.get("cpu"))
    resources["CPU"] = _cpus(cpus) if cpus is not None else 0.0
    gpus = params.get("num-gpus", limits.get("nvidia.com/gpu", 0))
    resources["GPU"] = float(gpus)
    if "memory" in limits:
        resources["memory"] = parse_bytes(str(limits["memory"])) * _RAY_MEMORY_SHARE
    custom = params.get("resources")
    if custom:
        decoded = json.loads(custom)
        decoded = json.loads(decoded) if isinstance(decoded, str) else decoded
        resources.update({str(k): float(v) for k, v in decoded.items()})
    return resources


def nodes_of_manifest(manifest: Mapping[str, Any]) -> list[Node]:
    """The nodes a RayService manifest can have: its head, and each worker group at its
    ``maxReplicas`` (the autoscaler grows it that far; ``replicas`` without autoscaling)."""
    cluster = manifest["spec"]["rayClusterConfig"]
    autoscaled = bool(cluster.get("enableInTreeAutoscaling"))
    nodes = [Node(name="head", resources=_group_node(cluster["headGroupSpec"]))]
    for group in cluster.get("workerGroupSpecs", []):
        count = int(group.get("maxReplicas" if autoscaled else "replicas", 1))
        shape = _group_node(group)
        name = group.get("groupName", "workers")
        nodes += [Node(name=f"{name} {i + 1}", resources=shape) for i in range(count)]
    return nodes


__all__ = [
    "HEADERS",
    "asks_table",
    "check_capacity",
    "describe_cluster",
    "nodes_of_manifest",
    "parse_node_specs",
    "table",
]
