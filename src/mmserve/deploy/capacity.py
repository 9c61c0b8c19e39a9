"""Does the app fit the cluster? The capacity preflight of ``mmserve serve`` and ``build``.

What each deployment asks for is what Serve gets (:func:`~mmserve.serve.plan.
all_deployment_options`): its replicas at deploy time (``num_replicas``, or autoscaling's
``initial_replicas``, i.e. ``max(min_replicas, 1)``), each asking for the ``num_cpus``,
``num_gpus``, ``memory`` and custom ``resources`` of its ``ray_actor_options``. What the
cluster has is a list of nodes with their total resources: a joined cluster's alive nodes
(:func:`nodes_from_ray`), or the node shapes ``mmserve build`` is told about
(:mod:`mmserve.deploy.capacity_table`).

The replicas are bin-packed greedily, first-fit decreasing: the ingress and the store first
(the app answers nothing without them), then the models' replicas, the largest first (by their
largest share of any of the cluster's totals, so a replica asking for a scarce custom
resource goes early), each on the first node with room for all of its asks, trying the nodes
that have no GPU or custom resource it does not ask for before those that do. GPUs are
counted per device as Ray does: a fraction below one must fit on one GPU, larger asks take
whole GPUs. Ray's own scheduler may place replicas differently, so a fit is an estimate; a
replica that fits on no node at all, or a total over the cluster's, never fits. No Ray import.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mmserve.config import AppConfig
from mmserve.serve.plan import INGRESS_NAME, STORE_NAME, all_deployment_options

#: Ray counts resources in units of 1/10000 (a replica may ask for 0.0001 CPU).
UNIT = 10_000
#: Kinds every node offers (and Ray's ``node:<ip>`` markers); any other kind (GPUs, custom
#: resources) is "special": kept free for the replicas that ask for it when possible.
_COMMON = frozenset({"CPU", "memory", "object_store_memory"})


def _special(kind: str) -> bool:
    return kind not in _COMMON and not kind.startswith("node:")


#: Placed before the models: the app answers nothing without them.
_FIRST = frozenset({INGRESS_NAME, STORE_NAME})


@dataclass(frozen=True)
class Node:
    """One node of a cluster: a name for people and its total resources (Ray's names)."""

    name: str
    resources: Mapping[str, float]


@dataclass(frozen=True)
class Ask:
    """One deployment: how many replicas it starts with and what one replica asks for."""

    deployment: str
    replicas: int
    per_replica: Mapping[str, float]
    #: ``(min_replicas, max_replicas)`` when it autoscales.
    autoscaling: tuple[int, int] | None = None

    def total(self) -> dict[str, float]:
        return {kind: amount * self.replicas for kind, amount in self.per_replica.items()}


@dataclass(frozen=True)
class Row:
    """One deployment's outcome: how many of its replicas found room, and why not all."""

    ask: Ask
    placed: int
    why: str = ""

    @property
    def fits(self) -> bool:
        return self.placed >= self.ask.replicas


@dataclass(frozen=True)
class Fit:
    """The outcome of fitting every deployment of an app on the nodes of a cluster."""

    rows: list[Row]
    nodes: list[Node]
    totals: dict[str, float] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return all(row.fits for row in self.rows)

    @property
    def pending(self) -> list[Row]:
        """The deployments some of whose replicas found no room (they would stay pending)."""
        return [row for row in self.rows if not row.fits]

    def asked(self) -> dict[str, float]:
        """What the whole app asks for."""
        return _sum(row.ask.total() for row in self.rows)


def asks_of(config: AppConfig) -> list[Ask]:
    """Every deployment of ``config`` (ingress, models, store) as Serve deploys it."""
    return [_ask(entry) for entry in all_deployment_options(config)]


def _ask(entry: Mapping[str, Any]) -> Ask:
    scaling = entry.get("autoscaling_config")
    bounds = None
    if scaling is not None:
        low = int(scaling.get("min_replicas", 1))
        replicas = int(scaling.get("initial_replicas") or max(low, 1))
        bounds = (low, int(scaling.get("max_replicas", replicas)))
    else:
        replicas = int(entry.get("num_replicas", 1))
    actor = entry.get("ray_actor_options", {})
    per = {
        "CPU": float(actor.get("num_cpus", 1.0)),
        "GPU": float(actor.get("num_gpus", 0.0)),
        "memory": float(actor.get("memory", 0.0) or 0.0),
        **{name: float(amount) for name, amount in actor.get("resources", {}).items()},
    }
    return Ask(
        deployment=str(entry["name"]),
        replicas=replicas,
        per_replica={kind: amount for kind, amount in per.items() if amount > 0},
        autoscaling=bounds,
    )


def nodes_from_ray(ray_nodes: Iterable[Mapping[str, Any]]) -> list[Node]:
    """The alive nodes of ``ray.nodes()``, each with its total ``Resources``."""
    nodes = []
    for info in ray_nodes:
        if not info.get("Alive"):
            continue
        resources = {str(k): float(v) for k, v in (info.get("Resources") or {}).items()}
        head = " (head)" if "node:__internal_head__" in resources else ""
        name = f"{info.get('NodeManagerAddress', '?')} {str(info.get('NodeID', ''))[:6]}{head}"
        nodes.append(Node(name=name.strip(), resources=resources))
    return nodes


def _units(amount: float) -> int:
    return round(amount * UNIT)


def _sum(parts: Iterable[Mapping[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for part in parts:
        for kind, amount in part.items():
            total[kind] = total.get(kind, 0.0) + amount
    return total


class _Room:
    """What is left free on one node: scalar kinds, and each GPU device on its own."""

    def __init__(self, index: int, node: Node) -> None:
        self.index = index
        self.free = {k: _units(v) for k, v in node.resources.items() if k != "GPU"}
        gpus = _units(node.resources.get("GPU", 0.0))
        self.gpus = [UNIT] * (gpus // UNIT) + ([gpus % UNIT] if gpus % UNIT else [])
        self.special = {k for k, v in node.resources.items() if v > 0 and _special(k)}

    def strangers(self, ask: Ask) -> int:
        """How many special kinds this node has that ``ask`` does not use (fewer: better)."""
        return len(self.special - set(ask.per_replica))

    def _gpu_slots(self, amount: int) -> list[int] | None:
        if amount == 0:
            return []
        if amount < UNIT:  # a fraction shares one device
            return next(([i] for i, free in enumerate(self.gpus) if free >= amount), None)
        whole = [i for i, free in enumerate(self.gpus) if free == UNIT]
        wanted = math.ceil(amount / UNIT)
        return whole[:wanted] if len(whole) >= wanted else None

    def take(self, ask: Ask) -> bool:
        """Reserve one replica of ``ask`` here if it fits; whether it did."""
        need = {k: _units(v) for k, v in ask.per_replica.items()}
        gpu = need.pop("GPU", 0)
        if any(self.free.get(kind, 0) < amount for kind, amount in need.items()):
            return False
        slots = self._gpu_slots(gpu)
        if slots is None:
            return False
        for kind, amount in need.items():
            self.free[kind] -= amount
        for slot in slots:
            self.gpus[slot] -= gpu if gpu < UNIT else UNIT
        return True


def cluster_totals(nodes: Sequence[Node]) -> dict[str, float]:
    return _sum(node.resources for node in nodes)


def fit(asks: Sequence[Ask], nodes: Sequence[Node]) -> Fit:
    """Place every replica of ``asks`` on ``nodes`` (first-fit decreasing, see the module)."""
    totals = cluster_totals(nodes)

    def share(ask: Ask) -> float:
        return (
            max(
                (v / totals[k] if totals.get(k, 0) > 0 else math.inf)
                for k, v in ask.per_replica.items()
            )
            if ask.per_replica
            else 0.0
        )

    rooms = [_Room(i, node) for i, node in enumerate(nodes)]
    replicas = [ask for ask in asks for _ in range(ask.replicas)]
    placed: Counter[str] = Counter()
    # the ingress and the store first: without them the app answers nothing at all
    ordered = sorted(replicas, key=lambda a: (a.deployment in _FIRST, share(a)), reverse=True)
    for ask in ordered:  # stable: config order on ties
        for room in sorted(rooms, key=lambda r: (r.strangers(ask), r.index)):
            if room.take(ask):
                placed[ask.deployment] += 1
                break
    asked = _sum(ask.total() for ask in asks)
    rows = [
        Row(ask, placed[ask.deployment], _why(ask, placed[ask.deployment], nodes, totals, asked))
        for ask in asks
    ]
    return Fit(rows=rows, nodes=list(nodes), totals=totals)


def _why(
    ask: Ask,
    placed: int,
    nodes: Sequence[Node],
    totals: Mapping[str, float],
    asked: Mapping[str, float],
) -> str:
    if placed >= ask.replicas:
        return ""
    lead = (
        f"{ask.replicas - placed} of {ask.replicas} replicas find no room: "
        if ask.replicas > 1
        else ""
    )
    missing = [kind for kind in ask.per_replica if totals.get(kind, 0.0) <= 0]
    if missing:
        return lead + f"no node has {_kinds(missing)}"
    if not any(_Room(i, node).take(ask) for i, node in enumerate(nodes)):
        largest = {k: max(n.resources.get(k, 0.0) for n in nodes) for k in ask.per_replica}
        over = [k for k, v in ask.per_replica.items() if v > largest[k] or _gpu_over(k, v, largest)]
        if over:
            return lead + "; ".join(
                f"one replica needs {format_amounts({k: ask.per_replica[k]})}, the largest "
                f"node has {format_amounts({k: largest[k]})}"
                for k in over
            )
        return lead + (
            f"no node has {format_amounts(ask.per_replica)} at once (each alone fits somewhere)"
        )
    short = {k: asked[k] for k in ask.per_replica if asked.get(k, 0.0) > totals.get(k, 0.0) + 1e-9}
    if short:
        return lead + (
            f"the app asks for {format_amounts(short)} in all, the cluster has "
            f"{format_amounts({k: totals.get(k, 0.0) for k in short})}"
        )
    if 0 < ask.per_replica.get("GPU", 0.0) < 1:
        return lead + (
            "a GPU fraction must fit on one GPU, and no GPU has that much left "
            "(the free parts are spread over several GPUs)"
        )
    return lead + "the room left on the nodes is spread too thin (taken by larger replicas)"


def _gpu_over(kind: str, amount: float, largest: Mapping[str, float]) -> bool:
    """More whole GPUs than any node has (a fraction always fits one device of a GPU node)."""
    return kind == "GPU" and amount >= 1 and math.ceil(amount - 1e-9) > largest[kind]


def _kinds(kinds: Sequence[str]) -> str:
    names = [("GPUs" if k == "GPU" else k) for k in kinds]
    return ", ".join(names)


def format_amount(kind: str, amount: float) -> str:
    if kind == "memory" or kind.endswith("memory"):
        return f"{kind} {format_bytes(amount)}"
    return f"{kind} {amount:g}" if amount == round(amount, 4) else f"{kind} {amount:.4g}"


def format_amounts(amounts: Mapping[str, float]) -> str:
    """``CPU 2, GPU 0.5, accel 1`` (CPU, GPU, memory first, then the custom kinds)."""
    order = {"CPU": 0, "GPU": 1, "memory": 2}
    kinds = sorted(amounts, key=lambda k: (order.get(k, 3), k))
    return ", ".join(format_amount(k, amounts[k]) for k in kinds) or "-"


def format_bytes(amount: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if amount >= size:
            return f"{amount / size:.3g}{unit}"
    return f"{amount:g}B"


__all__ = [
    "UNIT",
    "Ask",
    "Fit",
    "Node",
    "Row",
    "asks_of",
    "cluster_totals",
    "fit",
    "format_amounts",
    "format_bytes",
    "nodes_from_ray",
]
