"""The workflow language on a real Ray Serve with the tiny models (deployments/tiny.yaml):
the new shipped workflows answer over HTTP as in local mode, a for_each over 16 images rides
in Serve's batches, the cache and its bypass header, and a step with `retry` survives its
model replica being killed mid-run."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import ray
import yaml
from PIL import Image
from serve_support import ROOT, assert_close, free_port, wait_ready, write_config

from mmserve.config import AppConfig
from mmserve.deploy.session import ServeSession
from mmserve.local.mode import LocalApp

pytestmark = pytest.mark.serve

IMAGES = ROOT / "examples" / "images"
CAPTION_EACH = """
name: caption_each
inputs:
  images: {type: array, items: {type: image}}
steps:
  captions:
    uses: caption
    for_each: ${inputs.images}
    as: image
    cache: true
    retry: {attempts: 8, backoff_s: 1}
    with: {image: "${image}"}
outputs:
  captions: ${captions[*].text}
"""
SLOW_EACH = CAPTION_EACH.replace("name: caption_each", "name: slow_each").replace(
    "    cache: true\n", "    concurrency: 2\n"
)
INDEX_IMAGE = """
name: seed_image
inputs: {image: {type: image}}
steps:
  add: {uses: index, with: {collection: images, image: "${inputs.image}"}}
outputs: {count: "${add.count}"}
"""


def _b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _images(count: int, shift: int = 0) -> list[Image.Image]:
    return [
        Image.new("RGB", (32, 32), ((i * 15 + shift) % 256, 255 - (i * 15) % 256, 90))
        for i in range(count)
    ]


class Served:
    def __init__(self, url: str, config: AppConfig) -> None:
        self.url, self.config = url, config
        self.http = httpx.Client(base_url=url, timeout=300)

    def run(self, workflow: str, inputs: dict[str, Any], **headers: str) -> dict[str, Any]:
        response = self.http.post(
            f"/v1/workflows/{workflow}/run", json={"inputs": inputs}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture(scope="module")
def served(ray_local: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("language")
    (folder / "extra").mkdir()
    (folder / "extra" / "caption_each.yaml").write_text(CAPTION_EACH)
    (folder / "extra" / "slow_each.yaml").write_text(SLOW_EACH)
    data = yaml.safe_load((ROOT / "deployments" / "tiny.yaml").read_text())
    for model in data["models"].values():
        model["cpus"] = 0.1  # all of them on the 2 CPUs of this module's Ray
    data["store"] = {"kind": "lancedb", "path": str(folder / "store")}
    data["workflows"] = [str(ROOT / "workflows"), str(folder / "extra")]
    config_path = write_config(folder, data)
    config = AppConfig.load(config_path)
    local = LocalApp(config)
    (folder / "seed.yaml").write_text(INDEX_IMAGE)
    for image in sorted(IMAGES.glob("*.png")):
        asyncio.run(local.run(str(folder / "seed.yaml"), {"image": image.read_bytes()}))
    session = ServeSession(config, port=free_port())
    try:
        url = session.start()
        wait_ready(url)
        served = Served(url, config)
        yield served
        served.http.close()
    finally:
        session.stop()


CASES: dict[str, dict[str, Any]] = {
    "answer_each": {"question": "what shape is it?", "top_k": 3},
    "caption_matches": {"text": "a red circle", "top_k": 2},
    "classify_then_answer": {
        "image": base64.b64encode((IMAGES / "red_circle.png").read_bytes()).decode(),
        "question": "what is it?",
        "min_score": 0,
    },
}


def test_new_shipped_workflows_answer_as_in_local_mode(served: Served) -> None:
    local = LocalApp(served.config)
    for workflow, inputs in CASES.items():
        body = served.run(workflow, inputs)
        expected = asyncio.run(local.run(workflow, inputs)).model_dump(mode="json")
        assert_close(body["outputs"], expected["outputs"], where=workflow)
        assert [e["status"] for e in body["trace"]] == [e["status"] for e in expected["trace"]]
    skipped = served.run("classify_then_answer", {**CASES["classify_then_answer"], "min_score": 1})
    assert skipped["outputs"]["answer"] is None and skipped["trace"][1]["status"] == "skipped"


def test_for_each_over_16_items_rides_in_serve_batches(served: Served) -> None:
    images = [_b64(image) for image in _images(16)]
    body = served.run("caption_each", {"images": images}, **{"x-mmserve-cache": "bypass"})
    (entry,) = body["trace"]
    assert entry["items"] == 16 and entry["item_status"] == ["ok"] * 16
    assert entry["batch_size"] > 1
    local = LocalApp(served.config)
    expected = asyncio.run(local.run("caption_each", {"images": images}, use_cache=False))
    assert body["outputs"] == expected.model_dump(mode="json")["outputs"]
    again = served.run("caption_each", {"images": images})
    assert again["trace"][0]["item_status"] == ["cached"] * 16
    assert again["outputs"] == body["outputs"]


def _captioner_replica() -> Any:
    names = ray.util.list_named_actors(all_namespaces=True)
    (found,) = [n for n in names if "SERVE_REPLICA" in n["name"] and "#captioner#" in n["name"]]
    return ray.get_actor(found["name"], namespace=found["namespace"])


def test_a_step_with_retry_survives_its_replica_being_killed_mid_run(served: Served) -> None:
    images = [_b64(image) for image in _images(48, shift=7)]
    replica = _captioner_replica()
    result: dict[str, Any] = {}

    def run() -> None:
        result["body"] = served.run("slow_each", {"images": images})

    worker = threading.Thread(target=run)
    worker.start()
    # the items run two at a time, so the run is mid-way once the first batches were
    # served; wait for those, then kill the replica the remaining items need
    while ray.get(replica.get_num_ongoing_requests.remote()) == 0:
        assert worker.is_alive(), "the run ended before the replica saw a request"
        time.sleep(0.05)
    ray.kill(replica, no_restart=False)
    worker.join(timeout=600)
    body = result["body"]
    (entry,) = body["trace"]
    assert entry["status"] == "ok" and entry["item_status"] == ["ok"] * 48
    # Whoever absorbs the kill -- the ingress, which re-sends a model call whose replica died
    # (docs/reliability.md), or the step's own `retry` -- no item fails and the run answers.
    # That `retry` re-runs a failed item is shown in tests/unit/workflow/test_language.py.
    assert entry["attempts"] >= 1
    assert len(body["outputs"]["captions"]) == 48
