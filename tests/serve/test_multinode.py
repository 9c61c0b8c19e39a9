"""Two Ray nodes on this machine (ray.cluster_utils.Cluster): the second offers a custom
resource, the config places the VQA model there through `resources:`, and the app, deployed
by joining the cluster's address as `mmserve serve --address` does, still answers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ray import serve
from ray.cluster_utils import Cluster
from serve_support import ROOT, free_port, png_base64, wait_ready, write_config

from mmserve.config import AppConfig
from mmserve.serving.plan import APP_NAME
from mmserve.serving.runner import ServeSession

pytestmark = pytest.mark.serve

NODE_ARGS: dict[str, Any] = {"object_store_memory": 128 * 1024 * 1024}


class TwoNodes:
    def __init__(self, url: str, accel_node_id: str) -> None:
        self.url, self.accel_node_id = url, accel_node_id


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
        yield TwoNodes(url, accel.node_id)
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
