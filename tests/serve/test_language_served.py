"""The workflow language on a real Ray Serve with the tiny models (the `mmserve serve` of
deployments/tiny.yaml the serve modules share, shared_app.py): the new shipped workflows
answer over HTTP as in local mode, a for_each over 16 images rides in Serve's batches, the
cache and its bypass header, and a step with `retry` survives its model replica being killed
mid-run. ``caption_each`` and ``slow_each`` are the app's test-only workflows
(shared_app.TEST_WORKFLOWS)."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from PIL import Image
from serve_support import ROOT, assert_close, descendants, wait_ready, write_config
from shared_app import KEY, TinyApp, fill_collections

from mmserve.client.clients import Client
from mmserve.client.requests import RunResult
from mmserve.config import AppConfig
from mmserve.local.mode import LocalApp
from mmserve.media import decode_image
from mmserve.workflow import ItemProgress
from mmserve.workflow.steps.index import Document, index_documents

pytestmark = pytest.mark.serve

IMAGES = ROOT / "examples" / "images"
#: The process title Ray gives the captioner's Serve replica (``ray::<actor class>``, then
#: ``.<method>`` while it runs one): the app is ``mmserve``, the deployment ``captioner``.
CAPTIONER = re.compile(r"ray::ServeReplica:mmserve:captioner(?![\w:])")


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
    """The shared app (with the key) and a local-mode app of the same config whose store
    holds the same ``images`` items (same ids, bytes and metadata)."""

    def __init__(self, app: TinyApp, local: LocalApp) -> None:
        self.app, self.url, self.local = app, app.url, local
        self.http = httpx.Client(
            base_url=app.url, headers={"authorization": f"Bearer {KEY}"}, timeout=300
        )

    def run(self, workflow: str, inputs: dict[str, Any], **headers: str) -> dict[str, Any]:
        response = self.http.post(
            f"/v1/workflows/{workflow}/run", json={"inputs": inputs}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def _local_app(app: TinyApp, folder: Path) -> LocalApp:
    """Local mode on the shared app's config (without the role plugin) with a store of its
    own (the served store is the store replica's: this process only reads and writes its own
    lancedb folder), filled with the example images as fill_collections adds them over HTTP:
    ids by file name, the file's bytes as the payload, the same metadata."""
    data = yaml.safe_load(app.local_config_path.read_text(encoding="utf-8"))
    data["store"] = {**data["store"], "path": str(folder / "store")}
    local = LocalApp(AppConfig.load(write_config(folder, data)))
    documents = [
        Document(
            image=decode_image(path.read_bytes()),
            image_bytes=path.read_bytes(),
            id=path.stem,
            metadata={"set": "ex"},
        )
        for path in sorted(IMAGES.glob("*.png"))
    ]
    report = asyncio.run(index_documents(local.gateway, local.store, "images", documents))
    assert report.ids == [p.stem for p in sorted(IMAGES.glob("*.png"))]
    return local


@pytest.fixture(scope="module")
def served(keyed_tiny_app: TinyApp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with Client(keyed_tiny_app.url, api_key=KEY) as client:
        fill_collections(client)  # the example images as ``images``, ids by file name
    served = Served(keyed_tiny_app, _local_app(keyed_tiny_app, tmp_path_factory.mktemp("lang")))
    yield served
    served.http.close()


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
    for workflow, inputs in CASES.items():
        body = served.run(workflow, inputs)
        expected = asyncio.run(served.local.run(workflow, inputs)).model_dump(mode="json")
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
    expected = asyncio.run(served.local.run("caption_each", {"images": images}, use_cache=False))
    assert body["outputs"] == expected.model_dump(mode="json")["outputs"]
    again = served.run("caption_each", {"images": images})
    assert again["trace"][0]["item_status"] == ["cached"] * 16
    assert again["outputs"] == body["outputs"]


def _title(pid: int) -> str:
    """The process's title (its command line, which Ray rewrites for its workers)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return cmdline.replace(b"\0", b" ").decode(errors="replace").strip()


def _captioner_replicas(app: TinyApp) -> list[int]:
    """The pids of the captioner's replica processes among `mmserve serve`'s descendants
    (its own Ray cluster: the test process cannot reach its actors through Ray's API)."""
    return [pid for pid in descendants(app.process.pid) if CAPTIONER.match(_title(pid))]


def test_a_step_with_retry_survives_its_replica_being_killed_mid_run(served: Served) -> None:
    images = [_b64(image) for image in _images(48, shift=7)]
    (replica,) = _captioner_replicas(served.app)
    killed_at: ItemProgress | None = None
    got: list[object] = []
    with Client(served.url, api_key=KEY, timeout=600) as client:
        for item in client.stream("slow_each", images=images):
            got.append(item)
            if isinstance(item, ItemProgress) and killed_at is None:
                # The run's own progress, not a timing guess: the first item has ended and
                # the others had not when it was sent (two at a time, 48 items), so the
                # rest still need the captioner. Kill its replica now.
                killed_at = item
                os.kill(replica, signal.SIGKILL)
    assert killed_at is not None and killed_at.done < killed_at.total == 48
    *_, result = got
    assert isinstance(result, RunResult)
    (entry,) = result.trace
    assert entry["status"] == "ok" and entry["item_status"] == ["ok"] * 48
    # Whoever absorbs the kill -- the ingress, which re-sends a model call whose replica died
    # (docs/reliability.md), or the step's own `retry` -- no item fails and the run answers.
    # That `retry` re-runs a failed item is shown in tests/unit/workflow/test_language.py.
    assert entry["attempts"] >= 1
    assert len(result.outputs["captions"]) == 48
    # Serve replaced the replica; the app must be serving again for the modules after this
    deadline = time.monotonic() + 300
    while _captioner_replicas(served.app) in ([], [replica]):
        assert time.monotonic() < deadline, "Serve did not start a new captioner replica"
        time.sleep(0.5)
    wait_ready(served.url, timeout_s=300)
