"""Two Ray nodes on this machine (ray.cluster_utils.Cluster): the second offers a custom
resource, the config places the VQA model there through `resources:`, and the app, deployed
by joining the cluster's address as `mmserve serve --address` does, still answers. A config
too large for the two nodes is refused by `mmserve serve --address` with the capacity table,
before it touches Serve.

The app's own config does not fit the cluster either, on purpose: `text_encoder` asks for the
custom resource and more CPUs than its node has, so its replica stays pending. The app is
deployed as `mmserve serve --allow-pending` does (the preflight warns, Serve is not waited on
for it); `classify`, which needs it, fails fast with a 503 naming it, the other workflows
answer, and `mmserve status` shows why."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray
from ray import serve
from ray.cluster_utils import Cluster
from serve_support import MMSERVE_SERVE, ROOT, free_port, png_base64, write_config

from mmserve.config import AppConfig
from mmserve.deploy.session import ServeSession
from mmserve.serve.plan import APP_NAME

pytestmark = pytest.mark.serve

NODE_ARGS: dict[str, Any] = {"object_store_memory": 128 * 1024 * 1024}
#: `mmserve status`, the console script of the environment running the tests.
MMSERVE_STATUS = [MMSERVE_SERVE[0], "status"]


class TwoNodes:
    def __init__(self, url: str, accel_node_id: str, address: str) -> None:
        self.url, self.accel_node_id, self.address = url, accel_node_id, address


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoNodes]:
    cluster = Cluster(
        initialize_head=True,
        head_node_args={**NODE_ARGS, "num_cpus": 2, "include_dashboard": False},
    )
    session: ServeSession | None = None
    try:
        accel = cluster.add_node(**NODE_ARGS, num_cpus=1, resources={"accel": 1})
        cluster.wait_for_nodes()
        fake = {"backend": "fake", "source": "fake://", "cpus": 0.1}
        data = {
            "models": {
                "image_encoder": fake,
                # the accel node has 1 CPU: this replica cannot be scheduled anywhere
                "text_encoder": {**fake, "cpus": 2, "resources": {"accel": 1}},
                "captioner": fake,
                "vqa": {**fake, "resources": {"accel": 1}},
            },
            "store": {"kind": "memory"},
            "workflows": [
                str(ROOT / "workflows" / f"{n}.yaml") for n in ("answer", "describe", "classify")
            ],
        }
        folder: Path = tmp_path_factory.mktemp("multinode")
        config = AppConfig.load(write_config(folder, data))
        session = ServeSession(
            config,
            port=free_port(),
            address=cluster.address,
            proxy_location="HeadOnly",
            allow_pending=True,  # as `mmserve serve --allow-pending`: text_encoder cannot fit
            announce=lambda _table: None,
        )
        url = session.start()
        yield TwoNodes(url, accel.node_id, cluster.address)
    finally:
        # the cluster is ours: stopping its nodes stops Serve and every replica with them
        # (Serve's own shutdown waited for the replica that was never placed)
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


def _health(url: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """/v1/health once it reports the deployments: a new ingress answers "starting" with none
    while Serve's controller has not answered its first read within 2 s (a busy machine)."""
    deadline = time.monotonic() + timeout_s
    while True:
        health: dict[str, Any] = httpx.get(f"{url}/v1/health", timeout=10).json()
        if health.get("deployments") or time.monotonic() > deadline:
            return health
        time.sleep(0.5)


def test_the_vqa_replica_runs_on_the_node_with_the_resource(two_nodes: TwoNodes) -> None:
    handle = serve.get_deployment_handle("vqa", app_name=APP_NAME)

    async def settings() -> dict[str, Any]:
        result: dict[str, Any] = await handle.settings.remote()
        return result

    assert asyncio.run(settings())["node_id"] == two_nodes.accel_node_id


def test_workflows_answer_across_nodes(two_nodes: TwoNodes) -> None:
    health = _health(two_nodes.url)
    assert health["deployments"]["vqa"]["ready"], health
    for workflow in ("answer", "describe"):
        response = httpx.post(
            f"{two_nodes.url}/v1/workflows/{workflow}/run",
            json={"inputs": {"image": png_base64((220, 30, 30)), "question": "is it red?"}},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        assert response.json()["outputs"]["answer"] == "yes"


def test_a_config_too_large_for_the_cluster_is_refused_with_the_table(
    two_nodes: TwoNodes, tmp_path: Path
) -> None:
    """Head: 2 CPUs; the other node: 1 CPU and `accel`. The preflight reads the nodes
    (ray.nodes()) and refuses before Serve is touched: the running app keeps answering."""
    fake = {"backend": "fake", "source": "fake://"}
    config = write_config(
        tmp_path,
        {
            "models": {
                "captioner": {**fake, "cpus": 0.5},
                "vqa": {**fake, "cpus": 2, "resources": {"accel": 1}},  # no node has both
                "image_encoder": {**fake, "cpus": 0.1, "resources": {"vqa_node": 1}},
            },
            "store": {"kind": "memory"},
            "workflows": [],
        },
    )
    done = subprocess.run(
        [*MMSERVE_SERVE, "--config", str(config), "--address", two_nodes.address],
        capture_output=True,
        text=True,
        timeout=180,  # a hang fails the test instead of blocking it
    )
    assert done.returncode == 1, done.stderr
    assert "error: the config does not fit this Ray cluster (2 nodes: CPU 3, GPU 0, " in (
        done.stderr
    )
    rows = {line.split()[0]: line for line in done.stderr.splitlines()[1:] if line[:1].isalnum()}
    assert rows["vqa"].endswith("no node has CPU 2, accel 1 at once (each alone fits somewhere)")
    assert "CPU 3 (node max 2), accel 1" in rows["vqa"]
    assert rows["image_encoder"].endswith("no node has vqa_node")
    assert "captioner" not in rows  # it fits
    assert rows["all"].split()[:2] == ["all", "6"]  # five deployments and the job worker
    assert "Traceback" not in done.stderr
    health = _health(two_nodes.url)
    assert health["deployments"]["vqa"]["ready"], health


def test_a_workflow_needing_the_pending_model_fails_fast(two_nodes: TwoNodes) -> None:
    """`classify` needs `text_encoder`, whose replica cannot be scheduled: a 503 naming it and
    why, long before the 60 s deadline; a workflow on running models still answers."""
    inputs = {"image": png_base64((220, 30, 30)), "labels": ["red", "blue"]}
    response = httpx.post(
        f"{two_nodes.url}/v1/workflows/classify/run", json={"inputs": inputs}, timeout=60
    )
    # 503 model_unavailable, not the deadline's 504: the ingress failed fast, without waiting
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    error = response.json()["error"]
    assert error["code"] == "model_unavailable"
    assert "model 'text_encoder'" in error["message"]
    assert "cannot be scheduled" in error["message"]
    assert "CPU: 2" in error["message"] and "accel: 1" in error["message"]
    # the next request knows at once (the view is kept), and the other workflows still answer
    again = httpx.post(
        f"{two_nodes.url}/v1/workflows/classify/run", json={"inputs": inputs}, timeout=60
    )
    assert again.json()["error"]["code"] == "model_unavailable"
    answer = httpx.post(
        f"{two_nodes.url}/v1/workflows/answer/run",
        json={"inputs": {"image": inputs["image"], "question": "is it red?"}},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text


def _status_commands(address: str) -> list[list[str]]:
    """The `mmserve status` commands of docs/cluster.md's "Status and fail fast", for
    ``address``: the test runs what the docs tell an operator to run."""
    text = (ROOT / "docs" / "cluster.md").read_text(encoding="utf-8")
    section = text.split("## Status and fail fast", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None
    commands = [
        shlex.split(line.replace("<head-ip>:6379", address))
        for line in block.group(1).splitlines()
        if line.strip()
    ]
    assert all(command[:2] == ["mmserve", "status"] for command in commands)
    return [[*MMSERVE_STATUS, *command[2:]] for command in commands]


def test_mmserve_status_shows_the_pending_replica_and_why(two_nodes: TwoNodes) -> None:
    table_command, json_command = _status_commands(two_nodes.address)
    assert json_command[-1] == "--json"
    done = subprocess.run(json_command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    view = json.loads(done.stdout)
    pending = view["deployments"]["text_encoder"]
    assert (pending["running"], pending["pending"], pending["unschedulable"]) == (0, 1, True)
    assert pending["resources"] == {"CPU": 2.0, "accel": 1.0}
    assert "cannot be scheduled" in pending["why"]
    vqa = view["deployments"]["vqa"]
    assert (vqa["running"], vqa["pending"]) == (1, 0)
    assert [r["node_id"] for r in vqa["replicas"]] == [two_nodes.accel_node_id]
    assert vqa["batch"] == {"max_batch_size": 8, "batch_wait_timeout_s": 0.0}
    table = subprocess.run(table_command, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    row = next(line.split() for line in lines if line.startswith("text_encoder "))
    assert row[2:5] == ["0/1", "1", "0"]  # running/target, pending, starting
    assert any(
        line.startswith("text_encoder: pending: 1 replica(s) cannot be scheduled") for line in lines
    ), table.stdout
    missing = subprocess.run(
        [*table_command, "--app", "nope"], capture_output=True, text=True, timeout=120
    )
    assert missing.returncode == 1
    assert "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines()[-1] == (
        f"error: Serve on the cluster at {two_nodes.address!r} runs no app named 'nope' "
        "(start it with `mmserve serve --address`)"
    )
