"""`mmserve serve` as a user runs it: the offline tiny profile over plain HTTP (the app the
serve modules share, shared_app.py), results equal to local mode for every shipped workflow,
and fast clear failures for real models without network and a config that does not fit. Its
clean stop on SIGTERM is test_cli_serve_stop.py, after every other user of the app."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from serve_support import (
    MMSERVE_SERVE,
    ROOT,
    assert_close,
    free_port,
    write_config,
)
from shared_app import EXTRA_WORKFLOWS, GATED, KEY, TinyApp, fill_collections

from mmserve.client.clients import Client
from mmserve.config import AppConfig
from mmserve.local.mode import LocalApp

pytestmark = pytest.mark.serve

AUTH = {"authorization": f"Bearer {KEY}"}

IMAGES = ROOT / "examples" / "images"


def _image(name: str) -> str:
    return base64.b64encode((IMAGES / name).read_bytes()).decode("ascii")


#: Inputs for every shipped workflow (the test fails when a new one is not covered here;
#: the app's other workflows, shared_app.EXTRA_WORKFLOWS, are other modules').
CASES: dict[str, dict[str, Any]] = {
    "caption": {"image": _image("red_circle.png")},
    "answer": {"image": _image("blue_square.png"), "question": "what colour is the square?"},
    "classify": {"image": _image("green_triangle.png")},
    "describe": {"image": _image("yellow_sun.png")},
    "caption_then_retrieve": {"image": _image("red_circle.png"), "top_k": 2},
    "retrieve_then_answer": {"question": "what shape is red?"},
    "search_images": {"text": "a yellow sun", "top_k": 2},
    # images come back as base64 PNG: equal strings are equal bytes, served and local
    "generate": {"prompt": "a red circle", "width": 64, "height": 48, "seed": 1},
    "edit": {"image": _image("red_circle.png"), "instruction": "make it snow", "steps": 2},
    "generate_and_score": {"prompt": "a blue square", "width": 64, "height": 64, "seed": 2},
    "caption_then_generate": {"image": _image("yellow_sun.png"), "width": 48, "height": 48},
    "answer_each": {"question": "what shape is it?", "top_k": 2},
    "caption_matches": {"text": "a red circle", "top_k": 2},
    "classify_then_answer": {
        "image": _image("red_circle.png"),
        "question": "what is it?",
        "min_score": 0,
    },
}


class TinyServer:
    def __init__(
        self, url: str, config: AppConfig, ready_log: list[httpx.Response], local: LocalApp
    ) -> None:
        self.url, self.config = url, config
        #: the app's config in local mode, in this process (shared_app.TinyApp.local)
        self.local = local
        #: /v1/ready's answers from the start of `mmserve serve` until it was ready.
        self.ready_log = ready_log
        self.http = httpx.Client(base_url=url, headers=AUTH, timeout=300)


@pytest.fixture(scope="module")
def tiny_server(keyed_tiny_app: TinyApp) -> Iterator[TinyServer]:
    """The shipped tiny profile as `mmserve serve` runs it (the app the serve modules share,
    shared_app.py: a private store, the repository's workflows and agents, an API key), with
    the example captions and images indexed."""
    with Client(keyed_tiny_app.url, api_key=KEY) as client:
        fill_collections(client)
    config = AppConfig.load(keyed_tiny_app.local_config_path)
    server = TinyServer(keyed_tiny_app.url, config, keyed_tiny_app.ready_log, keyed_tiny_app.local)
    yield server
    server.http.close()


def test_real_models_without_network_fail_fast_pointing_at_the_tiny_profile(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run(
        [*MMSERVE_SERVE, "--config", str(ROOT / "deployments" / "local.yaml")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # a hang fails the test instead of blocking it
    )
    assert done.returncode == 1
    assert "--profile tiny" in done.stderr
    assert "Traceback" not in done.stderr


def test_ready_is_503_while_starting_and_200_once_every_deployment_is(
    tiny_server: TinyServer,
) -> None:
    answers = tiny_server.ready_log
    # before the app exists Serve's proxy answers for it (404/503 in plain text); once the
    # ingress runs, mmserve answers 503 not_ready with Retry-After until the models are up
    ours = [a for a in answers if a.headers.get("content-type") == "application/json"]
    starting = [a for a in ours if a.status_code == 503]
    assert starting, [(a.status_code, a.text[:80]) for a in answers]
    for answer in starting:
        assert answer.json()["error"]["code"] == "not_ready"
        assert answer.headers["retry-after"]
    assert all(a.status_code != 200 for a in answers[: answers.index(starting[-1])])
    ready = httpx.get(f"{tiny_server.url}/v1/ready", timeout=30)  # needs no key
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    deployments = set(ready.json()["deployments"])
    assert {"ingress", "captioner", "store", GATED} <= deployments


def test_every_shipped_workflow_answers_like_local_mode(tiny_server: TinyServer) -> None:
    listed = tiny_server.http.get("/v1/workflows").json()["workflows"]
    assert {w["name"] for w in listed} == set(CASES) | EXTRA_WORKFLOWS
    local = tiny_server.local
    for workflow, inputs in CASES.items():
        response = tiny_server.http.post(f"/v1/workflows/{workflow}/run", json={"inputs": inputs})
        assert response.status_code == 200, f"{workflow}: {response.text}"
        served = response.json()
        expected = asyncio.run(local.run(workflow, inputs)).model_dump(mode="json")
        if "image" in expected["outputs"]:
            assert_same_image(served["outputs"].pop("image"), expected["outputs"].pop("image"))
        assert_close(served["outputs"], expected["outputs"], where=workflow)
        assert [e["status"] for e in served["trace"]] == ["ok"] * len(expected["trace"])


def assert_same_image(served: str, local: str) -> None:
    """Equal PNG bytes, or pixels within one step where the float math differs: a model
    replica runs torch on its own number of threads (``cpus``), and InstructPix2Pix's VAE
    encoding rounds a few values differently on 1 thread than on 2 (measured: 18 of 27,648
    pixel values off by one on the tiny pipeline; text-to-image came out identical)."""
    from mmserve.media import coerce_image

    if served == local:
        return
    difference = np.abs(
        np.asarray(coerce_image(served), np.int16) - np.asarray(coerce_image(local), np.int16)
    )
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01


def test_generations_of_different_sizes_never_share_a_batch(tiny_server: TinyServer) -> None:
    """Concurrent requests of two sizes: each comes back at its size (a batch mixing sizes
    would fail: the backend refuses one), equal to local mode within float rounding."""
    from mmserve.media import coerce_image

    sizes = [(64, 48), (48, 64)] * 2
    bodies = [
        {"inputs": {"prompt": "a red circle", "width": w, "height": h, "seed": n, "steps": 2}}
        for n, (w, h) in enumerate(sizes)
    ]

    async def all_at_once() -> list[httpx.Response]:
        url = f"{tiny_server.url}/v1/workflows/generate/run"
        async with httpx.AsyncClient(headers=AUTH, timeout=300) as client:
            return list(await asyncio.gather(*(client.post(url, json=b) for b in bodies)))

    local = tiny_server.local
    for body, response in zip(bodies, asyncio.run(all_at_once()), strict=True):
        assert response.status_code == 200, response.text
        answer = response.json()
        image = coerce_image(answer["outputs"]["image"])
        inputs = body["inputs"]
        assert image.size == (inputs["width"], inputs["height"])
        assert answer["trace"][0]["batch_size"] <= 2  # only two requests share each size
        expected = asyncio.run(local.run("generate", inputs)).outputs["image"]
        difference = np.abs(np.asarray(image, np.int16) - np.asarray(expected, np.int16))
        assert difference.max() <= 1  # batch mates may round a pixel differently (docs)


@pytest.mark.parametrize(
    ("inputs", "status", "message"),
    [
        ({"prompt": ""}, 422, "'prompt'"),
        ({"prompt": "  "}, 422, "prompt is empty"),
        ({"prompt": "x", "seed": -1}, 422, "'seed'"),
        ({"prompt": "x", "width": 60, "height": 64}, 422, "multiples of 8"),
        ({"prompt": "x", "width": 4096, "height": 4096}, 413, "max_pixels"),
        ({"prompt": "x", "width": 64, "height": 64, "steps": 9}, 422, "max_steps"),
    ],
)
def test_bad_generation_inputs_get_a_clear_4xx(
    tiny_server: TinyServer, inputs: dict[str, Any], status: int, message: str
) -> None:
    response = tiny_server.http.post("/v1/workflows/generate/run", json={"inputs": inputs})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error["message"] and error["request_id"]


def test_a_config_that_does_not_fit_is_refused_before_serve_starts(tmp_path: Path) -> None:
    """The embedded local Ray has no node with the custom resource: `mmserve serve` refuses
    with the capacity table, before Serve starts, and exits non-zero."""
    fake = {"backend": "fake", "source": "fake://", "cpus": 0.1}
    config = write_config(
        tmp_path,
        {
            "models": {"captioner": fake, "vqa": {**fake, "resources": {"accel_node": 1}}},
            "store": {"kind": "memory"},
            "workflows": [],
        },
    )
    done = subprocess.run(
        [*MMSERVE_SERVE, "--config", str(config), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,  # a hang fails the test instead of blocking it
    )
    assert done.returncode == 1, done.stderr
    assert "error: the config does not fit this Ray cluster (1 node: CPU " in done.stderr
    assert "replicas of vqa would stay pending" in done.stderr
    (row,) = [line for line in done.stderr.splitlines() if line.startswith("vqa ")]
    assert row.split()[:2] == ["vqa", "1"]
    assert row.endswith("no node has accel_node")
    assert "--allow-pending" in done.stderr
    assert "Traceback" not in done.stderr
    assert "Started Serve" not in done.stderr and "Deploying" not in done.stderr
