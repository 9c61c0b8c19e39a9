"""``placement: ingress`` on a real Ray Serve: the captioner (the weight-free ``fake`` model)
is loaded in each ingress replica and has no deployment of its own, workflows that use it
answer as in local mode, concurrent requests ride in one batch, a bad item fails only its own
request; the VQA model next to it stays a deployment of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from ray import serve
from serve_support import ROOT, png_base64, write_config

from mmserve.config import AppConfig
from mmserve.deploy.session import ServeSession
from mmserve.local.mode import LocalApp
from mmserve.models.backends.fake import FAIL_MARKER
from mmserve.serve.plan import APP_NAME

pytestmark = pytest.mark.serve

RED, BLUE = (220, 30, 30), (30, 60, 220)


@pytest.fixture(scope="module")
def served(ray_local: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("placement")
    fake = {"backend": "fake", "source": "fake://", "cpus": 0.1}
    data = {
        "models": {
            # a 200 ms batch wait: the concurrent requests below reliably share a batch
            "captioner": {**fake, "placement": "ingress", "batch": {"max_size": 8, "wait_ms": 200}},
            "vqa": fake,
        },
        "store": {"kind": "memory"},
        "workflows": [str(ROOT / "workflows" / f"{name}.yaml") for name in ("caption", "answer")],
        "server": {"ingress_replicas": 2},
    }
    config_path = write_config(folder, data)
    session = ServeSession(AppConfig.load(config_path), port=ray_local)
    url = session.start()
    try:
        yield url
    finally:
        session.stop()


def _post(url: str, workflow: str, inputs: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{url}/v1/workflows/{workflow}/run", json={"inputs": inputs}, timeout=60)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _post_many(url: str, inputs: list[dict[str, Any]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        return await asyncio.gather(
            *(client.post("/v1/workflows/caption/run", json={"inputs": i}) for i in inputs)
        )


def test_the_model_in_the_ingress_has_no_deployment_and_health_lists_it_there(
    served: str,
) -> None:
    deployments = serve.status().applications[APP_NAME].deployments
    assert set(deployments) == {"ingress", "vqa", "store", "jobs"}
    health = httpx.get(f"{served}/v1/health", timeout=30).json()
    assert health["ready"] is True
    assert set(health["deployments"]) == {"ingress", "vqa", "store", "jobs"}
    assert health["deployments"]["ingress"]["models"] == ["captioner"]
    # the job worker runs workflows too: it loads the models placed in the ingress as well
    assert health["deployments"]["jobs"]["models"] == ["captioner"]
    assert health["deployments"]["ingress"]["replicas"] == 2
    assert health["deployments"]["vqa"]["models"] == ["vqa"]


def test_workflows_answer_as_in_local_mode(served: str) -> None:
    fake = {"backend": "fake", "source": "fake://"}
    workflows = [str(ROOT / "workflows" / f"{name}.yaml") for name in ("caption", "answer")]
    local = LocalApp(
        AppConfig.from_dict({"models": {"captioner": fake, "vqa": fake}, "workflows": workflows})
    )
    cases = {
        "caption": {"image": png_base64(RED), "prompt": "look"},
        "answer": {"image": png_base64(BLUE), "question": "what colour is it?"},
    }
    for workflow, inputs in cases.items():
        body = _post(served, workflow, inputs)
        expected = asyncio.run(local.run(workflow, inputs)).model_dump(mode="json")
        assert body["outputs"] == expected["outputs"], workflow
    assert _post(served, "caption", {"image": png_base64(RED)})["outputs"]["caption"] == (
        "a red image"
    )


def test_concurrent_requests_ride_in_one_batch_and_a_bad_item_fails_alone(served: str) -> None:
    prompts = ["one", "two", FAIL_MARKER, "three", "four", "five", "six", "seven"]
    inputs = [{"image": png_base64(RED), "prompt": prompt} for prompt in prompts]
    responses = asyncio.run(_post_many(served, inputs))
    assert responses[2].status_code == 500, responses[2].text
    assert "on purpose" in responses[2].json()["error"]["message"]
    good = [r for i, r in enumerate(responses) if i != 2]
    assert [r.status_code for r in good] == [200] * 7, [r.text for r in good]
    assert [r.json()["outputs"]["caption"] for r in good] == [
        f"{p} a red image" for i, p in enumerate(prompts) if i != 2
    ]
    # the failed batch was retried item by item (batch size 1); concurrent requests without
    # a bad item ride together
    bodies = [r.json() for r in asyncio.run(_post_many(served, inputs[:2] * 4))]
    sizes = [body["trace"][0]["batch_size"] for body in bodies]
    assert max(sizes) > 1, sizes
