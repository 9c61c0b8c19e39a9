"""The capacity preflight: fitting an app's replicas on a cluster's nodes (no Ray started)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mmserve.config import AppConfig
from mmserve.deploy.capacity import Ask, Node, asks_of, fit, nodes_from_ray
from mmserve.deploy.capacity_table import (
    check_capacity,
    nodes_of_manifest,
    parse_node_specs,
    table,
)
from mmserve.deploy.serve_config import rayservice_manifest
from mmserve.errors import CapacityError

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def _fake(**options: Any) -> dict[str, Any]:
    return {"backend": "fake", "source": "fake://", **options}


def _config(models: dict[str, Any], *, jobs: bool = False, **server: Any) -> AppConfig:
    """The app of ``models``; without its job worker unless ``jobs`` (its 0.1 CPU would
    change every total below)."""
    data = {
        "models": models,
        "store": {"kind": "memory"},
        "server": server,
        "jobs": {"enabled": jobs},
    }
    return AppConfig.from_dict(data, base_dir=ROOT)


def _why(outcome: Any) -> dict[str, tuple[int, str]]:
    """deployment -> (replicas placed, why not all) for the deployments with replicas pending."""
    return {row.ask.deployment: (row.placed, row.why) for row in outcome.pending}


#: The cluster of issue 18: a head and a worker with a custom resource.
TWO_NODES = [Node("head", {"CPU": 3.0}), Node("worker", {"CPU": 3.0, "vqa_node": 1.0})]


def test_what_serve_deploys_is_what_is_asked_for() -> None:
    config = _config(
        {
            "captioner": _fake(replicas=2, cpus=0.5, gpus=0.25),
            "vqa": _fake(cpus=1, resources={"vqa_node": 0.5}),
        },
        ingress_replicas=2,
        jobs=True,
    )
    asks = {ask.deployment: ask for ask in asks_of(config)}
    assert set(asks) == {"ingress", "captioner", "vqa", "store", "jobs"}
    assert (asks["jobs"].replicas, dict(asks["jobs"].per_replica)) == (1, {"CPU": 0.1})
    assert (asks["ingress"].replicas, dict(asks["ingress"].per_replica)) == (2, {"CPU": 0.5})
    assert dict(asks["captioner"].total()) == {"CPU": 1.0, "GPU": 0.5}
    assert dict(asks["vqa"].per_replica) == {"CPU": 1.0, "vqa_node": 0.5}
    assert dict(asks["store"].per_replica) == {"CPU": 0.25}


def test_a_config_that_fits_places_every_replica() -> None:
    config = _config(
        {
            "captioner": _fake(replicas=2, cpus=1),
            "vqa": _fake(cpus=1, resources={"vqa_node": 0.5}),
            "image_encoder": _fake(cpus=1),
        },
        ingress_replicas=2,
    )
    # 5.25 CPUs of 6: fits only if vqa goes to the worker before CPU-only replicas fill it
    outcome = fit(asks_of(config), TWO_NODES)
    assert outcome.fits, table(outcome)
    assert all(row.placed == row.ask.replicas for row in outcome.rows)
    assert check_capacity(outcome, allow_pending=False) == ""
    last = table(outcome).splitlines()[-1].split()
    assert last[:2] == ["all", "7"] and last[-1] == "fits"


def test_a_replica_larger_than_every_node_never_fits() -> None:
    outcome = fit(asks_of(_config({"captioner": _fake(cpus=4)})), TWO_NODES)
    assert _why(outcome) == {
        "captioner": (0, "one replica needs CPU 4, the largest node has CPU 3")
    }


def test_replicas_that_fit_alone_but_not_together_name_the_total() -> None:
    outcome = fit(asks_of(_config({"captioner": _fake(replicas=6, cpus=1)})), TWO_NODES)
    # ingress 0.5 + store 0.25 + 6 x 1 = 6.75 CPUs of 6: one captioner replica is left out
    assert _why(outcome) == {
        "captioner": (
            5,
            "1 of 6 replicas find no room: the app asks for CPU 6.75 in all, the cluster has CPU 6",
        )
    }


def test_a_custom_resource_no_node_has_is_named() -> None:
    outcome = fit(asks_of(_config({"vqa": _fake(resources={"accel": 1})})), TWO_NODES)
    assert _why(outcome) == {"vqa": (0, "no node has accel")}
    outcome = fit(asks_of(_config({"vqa": _fake(gpus=0.5)})), TWO_NODES)
    assert _why(outcome) == {"vqa": (0, "no node has GPUs")}


def test_resources_a_node_has_only_apart_are_named_together() -> None:
    # the worker has the resource but not the CPUs; the head has the CPUs
    nodes = [Node("head", {"CPU": 4.0}), Node("worker", {"CPU": 1.0, "accel": 1.0})]
    outcome = fit(asks_of(_config({"vqa": _fake(cpus=2, resources={"accel": 1})})), nodes)
    assert _why(outcome) == {
        "vqa": (0, "no node has CPU 2, accel 1 at once (each alone fits somewhere)")
    }


def test_gpu_fractions_must_fit_on_one_gpu() -> None:
    node = [Node("gpu", {"CPU": 16.0, "GPU": 2.0})]
    # four quarters share one GPU; 2 x 0.6 + 0.6: 1.8 of 2 GPUs, but no GPU has 0.6 left
    quarters = fit(asks_of(_config({"image_encoder": _fake(replicas=4, cpus=1, gpus=0.25)})), node)
    assert quarters.fits
    thirds = fit(asks_of(_config({"captioner": _fake(replicas=3, cpus=1, gpus=0.6)})), node)
    assert _why(thirds) == {
        "captioner": (
            2,
            "1 of 3 replicas find no room: a GPU fraction must fit on one GPU, and no GPU has "
            "that much left (the free parts are spread over several GPUs)",
        )
    }
    # whole GPUs: two on one node, never one on each of two nodes
    nodes = [Node("a", {"CPU": 8.0, "GPU": 1.0}), Node("b", {"CPU": 8.0, "GPU": 1.0})]
    whole = fit(asks_of(_config({"image_generator": _fake(cpus=1, gpus=2)})), nodes)
    assert _why(whole) == {
        "image_generator": (0, "one replica needs GPU 2, the largest node has GPU 1")
    }


def test_autoscaling_counts_the_replicas_it_starts_with() -> None:
    config = _config(
        {
            "captioner": _fake(cpus=1, autoscaling={"min_replicas": 3, "max_replicas": 5}),
            "vqa": _fake(cpus=1, autoscaling={"min_replicas": 0, "max_replicas": 2}),
        }
    )
    asks = {ask.deployment: ask for ask in asks_of(config)}
    assert (asks["captioner"].replicas, asks["captioner"].autoscaling) == (3, (3, 5))
    assert asks["vqa"].replicas == 1  # scale-to-zero still starts one replica
    outcome = fit(list(asks.values()), [Node("small", {"CPU": 4.0})])
    # ingress 0.5 + store 0.25 + 3 + 1 = 4.75 > 4: the ingress and the store go first
    assert _why(outcome) == {
        "vqa": (0, "the app asks for CPU 4.75 in all, the cluster has CPU 4"),
    }
    assert "3 (autoscaling 3-5)" in table(outcome)


def test_memory_is_checked_where_a_replica_asks_for_it() -> None:
    config = _config(
        {
            "captioner": _fake(memory="4Gi"),
            "text_encoder": _fake(memory=2**20, placement="ingress"),
        }
    )
    asks = {ask.deployment: ask for ask in asks_of(config)}
    assert asks["captioner"].per_replica["memory"] == 4 * 2**30
    assert asks["ingress"].per_replica["memory"] == 2**20  # the model placed in it
    assert "memory" not in asks["store"].per_replica
    roomy = fit(list(asks.values()), [Node("n", {"CPU": 8.0, "memory": 8 * 2**30})])
    assert roomy.fits
    small = fit(list(asks.values()), [Node("n", {"CPU": 8.0, "memory": 3 * 2**30})])
    assert _why(small) == {
        "captioner": (0, "one replica needs memory 4GiB, the largest node has memory 3GiB")
    }
    asks = [Ask("llm", 1, {"CPU": 1.0, "memory": 24 * 2**30})]
    nodes = [Node("n", {"CPU": 8.0, "memory": 16 * 2**30})]
    assert _why(fit(asks, nodes)) == {
        "llm": (0, "one replica needs memory 24GiB, the largest node has memory 16GiB")
    }
    assert fit(asks, [Node("n", {"CPU": 8.0, "memory": 32 * 2**30})]).fits


def test_the_refusal_carries_the_table_of_what_does_not_fit() -> None:
    config = _config({"captioner": _fake(cpus=4), "vqa": _fake(resources={"accel": 1})})
    outcome = fit(asks_of(config), TWO_NODES)
    with pytest.raises(CapacityError) as caught:
        check_capacity(outcome, allow_pending=False)
    text = str(caught.value)
    lines = text.splitlines()
    assert lines[0] == (
        "the config does not fit this Ray cluster (2 nodes: CPU 6, GPU 0, accel 0): "
        "replicas of captioner, vqa would stay pending"
    )
    assert lines[1].split() == [
        "deployment",
        "replicas",
        "per",
        "replica",
        "total",
        "cluster",
        "has",
        "why",
    ]
    assert [line.split()[0] for line in lines[2:5]] == ["captioner", "vqa", "all"]
    assert "CPU 6 (node max 3)" in lines[2]
    assert "--allow-pending" in lines[-1]
    warning = check_capacity(outcome, allow_pending=True)
    assert warning.startswith("warning: the config does not fit")
    assert lines[1] in warning


def test_alive_nodes_come_from_ray_nodes() -> None:
    listed = [
        {
            "NodeID": "a1b2c3d4",
            "Alive": True,
            "NodeManagerAddress": "10.0.0.1",
            "Resources": {"CPU": 3.0, "memory": 1e9, "node:__internal_head__": 1.0},
        },
        {"NodeID": "ffff", "Alive": False, "NodeManagerAddress": "10.0.0.9", "Resources": {}},
        {
            "NodeID": "e5f6a7b8",
            "Alive": True,
            "NodeManagerAddress": "10.0.0.2",
            "Resources": {"CPU": 3.0, "vqa_node": 1.0},
        },
    ]
    nodes = nodes_from_ray(listed)
    assert [n.name for n in nodes] == ["10.0.0.1 a1b2c3 (head)", "10.0.0.2 e5f6a7"]
    assert nodes[1].resources["vqa_node"] == 1.0


def test_node_shapes_of_the_build_option() -> None:
    nodes = parse_node_specs(["count=2,cpus=8,gpus=1,memory=32Gi,accel=4", "CPU=2"])
    assert len(nodes) == 3
    assert dict(nodes[0].resources) == {
        "CPU": 8.0,
        "GPU": 1.0,
        "memory": float(32 * 2**30),
        "accel": 4.0,
    }
    assert dict(nodes[2].resources) == {"CPU": 2.0}
    for bad in ("cpus", "cpus=many", "count=0,cpus=1", "memory=lots"):
        with pytest.raises(ValueError, match="--node"):
            parse_node_specs([bad])


def test_the_rayservice_nodes_are_its_head_and_its_workers_at_their_maximum() -> None:
    config = AppConfig.load(ROOT / "deployments" / "cluster.yaml")
    nodes = nodes_of_manifest(rayservice_manifest(config, config_path="/app/c.yaml"))
    assert [n.name for n in nodes] == ["head", *(f"gpu-workers {i}" for i in range(1, 5))]
    assert (nodes[0].resources["CPU"], nodes[0].resources["GPU"]) == (0.0, 0.0)
    assert (nodes[1].resources["CPU"], nodes[1].resources["GPU"]) == (8.0, 1.0)
    assert fit(asks_of(config), nodes).fits  # the shipped profile fits its manifest
    vqa = _config({"vqa": _fake(gpus=0.5, resources={"accel": 1})})
    nodes = nodes_of_manifest(rayservice_manifest(vqa, config_path="/app/c.yaml"))
    assert nodes[1].resources["accel"] == 1000.0
