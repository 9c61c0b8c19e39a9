"""Two Ray nodes on this machine (ray.cluster_utils.Cluster): the second offers a custom
resource, the config places the VQA model there through `resources:`, and the app, deployed
by joining the cluster's address as `mmserve serve --address` does, still answers. A config
too large for the two nodes is refused by `mmserve serve --address` with the capacity table,
before it touches Serve."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ray import serve
from ray.cluster_utils import Cluster
from serve_support import MMSERVE_SERVE, ROOT, free_port, png_base64, wait_ready, write_config

from mmserve.config import AppConfig
from mmserve.serving.plan import APP_NAME
from mmserve.serving.runner import ServeSession

pytestmark = pytest.mark.serve

NODE_ARGS: dict[str, Any] = {"object_store_memory": 128 * 1024 * 1024}


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
                "text_encoder": fake,
                "captioner": fake,
                "vqa": {**fake, "resources": {"accel": 1}},
            },
            "store": {"kind": "memory"},
            "workflows": [str(ROOT / "workflows" / f"{n}.yaml") for n in ("answer", "describe")],
        }
        folder: Path = tmp_path_factory.mktemp("multinode")
        config = AppConfig.load(write_config(folder, data))
        session = ServeSession(
            config, port=free_port(), address=cluster.address, proxy_location="HeadOnly"
        )
        url = session.start()
        yield TwoNodes(url, accel.node_id, cluster.address)
    finally:
        if session is not None:
            session.stop()
        cluster.shutdown()


def test_the_vqa_replica_runs_on_the_node_with_the_resource(two_nodes: TwoNodes) -> None:
    handle = serve.get_deployment_handle("vqa", app_name=APP_NAME)

    async def settings() -> dict[str, Any]:
        result: dict[str, Any] = await handle.settings.remote()
        return result

    assert asyncio.run(settings())["node_id"] == two_nodes.accel_node_id


def test_workflows_answer_across_nodes(two_nodes: TwoNodes) -> None:
    health = wait_ready(two_nodes.url)
    assert health["deployments"]["vqa"]["ready"]
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
    assert rows["all"].split()[:2] == ["all", "5"]
    assert "Traceback" not in done.stderr
    assert wait_ready(two_nodes.url)["deployments"]["vqa"]["ready"]
