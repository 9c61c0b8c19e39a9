"""The served app's mechanics on a real Ray Serve, with the weight-free ``fake`` models:
health, every workflow over HTTP (equal to local mode), replicas, dynamic batching, live
batch settings, the shared store under concurrent ingests, errors, model replicas killed
under load, a store replica killed during ingest, and `serve run` of the config `mmserve
build` writes; over the ``actor`` transport (the other serve modules run the default, grpc)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray
import yaml
from ray import serve
from serve_support import (
    ROOT,
    assert_close,
    descendants,
    png_base64,
    wait_ready,
    write_config,
)

from mmserve import Client
from mmserve.config import AppConfig
from mmserve.deploy.session import ServeSession
from mmserve.errors import ModelLoadError, ModelNotConfiguredError, ServingError
from mmserve.local.mode import LocalApp
from mmserve.models.backends.fake import FAIL_MARKER
from mmserve.models.roles import CaptionItem
from mmserve.serve.handles import _call
from mmserve.serve.plan import APP_NAME
from mmserve.stores import open_store

pytestmark = pytest.mark.serve

RED, BLUE, GREEN, YELLOW = (220, 30, 30), (30, 60, 220), (40, 170, 60), (240, 220, 40)
SHIPPED = [
    "caption",
    "answer",
    "classify",
    "caption_then_retrieve",
    "retrieve_then_answer",
    "search_images",
]
INDEX_WORKFLOWS = {
    "index_text.yaml": """
name: index_text
inputs:
  text: {type: string}
  collection: {type: string, default: captions}
steps:
  add:
    uses: index
    with: {collection: "${inputs.collection}", text: "${inputs.text}"}
outputs:
  count: ${add.count}
""",
    "index_texts.yaml": """
name: index_texts
inputs:
  texts: {type: array, items: {type: string}}
  collection: {type: string, default: bulk}
steps:
  add:
    uses: index
    with: {collection: "${inputs.collection}", texts: "${inputs.texts}"}
outputs:
  count: ${add.count}
""",
    "index_image.yaml": """
name: index_image
inputs:
  image: {type: image}
  collection: {type: string, default: images}
steps:
  add:
    uses: index
    with: {collection: "${inputs.collection}", image: "${inputs.image}"}
outputs:
  count: ${add.count}
""",
}


def _config_data(folder: Path, *, captioner_batch: dict[str, Any]) -> dict[str, Any]:
    fake = {"backend": "fake", "source": "fake://", "cpus": 0.1}
    return {
        "models": {
            "image_encoder": fake,
            "text_encoder": fake,
            "captioner": {**fake, "replicas": 2, "batch": captioner_batch},
            "vqa": {**fake, "batch": {"max_size": 4, "wait_ms": 1}},
        },
        # LanceDB, the default store: one writer replica must keep concurrent ingests exact.
        "store": {"kind": "lancedb", "path": str(folder / "store")},
        "workflows": [str(ROOT / "workflows" / f"{n}.yaml") for n in SHIPPED]
        + [str(folder / name) for name in INDEX_WORKFLOWS],
        # the actor transport (ingress -> models as Ray actor calls); grpc is what the other
        # serve modules run
        "server": {"ingress_replicas": 2, "transport": "actor"},
    }


class Served:
    def __init__(self, url: str, config_path: Path, folder: Path, port: int) -> None:
        self.url, self.config_path, self.folder, self.port = url, config_path, folder, port
        self.config = AppConfig.load(config_path)

    def run(self, workflow: str, **inputs: Any) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/v1/workflows/{workflow}/run", json={"inputs": inputs}, timeout=60
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def run_many(self, workflow: str, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as client:
            responses = await asyncio.gather(
                *(client.post(f"/v1/workflows/{workflow}/run", json={"inputs": i}) for i in inputs)
            )
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
        return [r.json() for r in responses]


@pytest.fixture(scope="module")
def served(ray_local: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("served")
    for name, text in INDEX_WORKFLOWS.items():
        (folder / name).write_text(text, encoding="utf-8")
    data = _config_data(folder, captioner_batch={"max_size": 8, "wait_ms": 200})
    config_path = write_config(folder, data)
    port = ray_local  # the shared Serve's
    session = ServeSession(AppConfig.load(config_path), port=port)
    url = session.start()
    try:
        yield Served(url, config_path, folder, port)
    finally:
        session.stop()


def test_health_reports_every_deployment_ready(served: Served) -> None:
    health = wait_ready(served.url)
    deployments = health["deployments"]
    assert set(deployments) == {
        "ingress",
        "image_encoder+text_encoder",
        "captioner",
        "vqa",
        "store",
        "jobs",
    }
    assert deployments["captioner"]["replicas"] == 2
    assert deployments["ingress"]["replicas"] == 2
    assert deployments["image_encoder+text_encoder"]["models"] == ["image_encoder", "text_encoder"]


def test_model_workflows_over_http_equal_local_mode(served: Served) -> None:
    cases = {
        "caption": {"image": png_base64(RED)},
        "answer": {"image": png_base64(BLUE), "question": "what colour is it?"},
        "classify": {"image": png_base64(GREEN), "labels": ["red", "green", "blue"]},
    }
    local = LocalApp(served.config)
    for workflow, inputs in cases.items():
        body = served.run(workflow, **inputs)
        expected = asyncio.run(local.run(workflow, inputs)).model_dump(mode="json")
        assert_close(body["outputs"], expected["outputs"], where=workflow)
        assert [e["step"] for e in body["trace"]] == [e["step"] for e in expected["trace"]]
    assert served.run("caption", image=png_base64(RED))["outputs"]["caption"] == "a red image"


def test_concurrent_ingests_neither_lose_nor_duplicate(served: Served) -> None:
    texts = [f"a {c} thing number {n}" for n in range(6) for c in ("red", "blue")]
    # every text twice, all at once, spread over both ingress replicas
    asyncio.run(served.run_many("index_text", [{"text": t} for t in texts + texts]))
    images = [png_base64(c) for c in (RED, BLUE, GREEN, YELLOW)]
    asyncio.run(served.run_many("index_image", [{"image": i} for i in images + images]))
    # a no-op re-index reports the final counts
    assert served.run("index_text", text=texts[0])["outputs"]["count"] == len(texts)
    assert served.run("index_image", image=images[0])["outputs"]["count"] == len(images)

    # one request with many items: fanned out item by item, re-batched by Serve
    bulk = served.run("index_texts", texts=[f"bulk text {n}" for n in range(40)])
    assert bulk["outputs"]["count"] == 40
    assert bulk["trace"][0]["batch_size"] > 1

    found = served.run("caption_then_retrieve", image=png_base64(RED), top_k=3)["outputs"]
    assert found["caption"] == "a red image"
    assert len(found["matches"]) == 3
    assert all("red" in m["payload"]["text"] for m in found["matches"])
    answered = served.run("retrieve_then_answer", question="is it yellow?")["outputs"]
    assert answered["answer"] == "yes"
    matches = served.run("search_images", text="blue", top_k=2)["outputs"]["matches"]
    assert len(matches) == 2


def test_concurrent_requests_ride_in_batches(served: Served) -> None:
    bodies = asyncio.run(served.run_many("caption", [{"image": png_base64(RED)}] * 8))
    sizes = [body["trace"][0]["batch_size"] for body in bodies]
    assert max(sizes) > 1, sizes


def test_a_bad_item_fails_only_its_own_request(served: Served) -> None:
    # The captioner waits 200 ms to fill its batches: the poisoned prompt rides with others.
    prompts = ["one", FAIL_MARKER, "two", "three", "four", "five", "six", "seven"]

    async def run_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=served.url, timeout=60) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/v1/workflows/caption/run",
                        json={"inputs": {"image": png_base64(RED), "prompt": prompt}},
                    )
                    for prompt in prompts
                )
            )

    responses = asyncio.run(run_all())
    assert responses[1].status_code == 500, responses[1].text
    assert "on purpose" in responses[1].json()["error"]["message"]
    good = [r for i, r in enumerate(responses) if i != 1]
    assert [r.status_code for r in good] == [200] * 7, [r.text for r in good]
    expected = [f"{p} a red image" for i, p in enumerate(prompts) if i != 1]
    assert [r.json()["outputs"]["caption"] for r in good] == expected


def _replicas_answering(calls: int = 24) -> set[str]:
    handle = serve.get_deployment_handle("captioner", app_name=APP_NAME)

    async def call_all() -> set[str]:
        image = await asyncio.to_thread(_image)
        seen: set[str] = set()
        for _ in range(10):  # rounds: under light load one round may all go to one replica
            item = CaptionItem(image=image)
            results = await asyncio.gather(
                *(handle.call.remote("caption", item) for _ in range(calls))
            )
            seen |= {result.replica for result in results}
            if len(seen) >= 2:
                break
        return seen

    return asyncio.run(call_all())


def _image() -> Any:
    from PIL import Image

    return Image.new("RGB", (16, 16), RED)


def test_both_replicas_serve_requests(served: Served) -> None:
    assert len(_replicas_answering()) == 2


def test_replica_errors_come_back_as_mmserve_errors(served: Served) -> None:
    handle = serve.get_deployment_handle("captioner", app_name=APP_NAME)

    async def wrong_role() -> None:
        await _call("captioner", handle.call.remote("embed_texts", "hello"))

    with pytest.raises(ModelNotConfiguredError, match="no method 'embed_texts'"):
        asyncio.run(wrong_role())


def _replica_pids(deployment: str) -> list[int]:
    """The processes of ``deployment``'s replicas: among this test's own descendants (the
    session's Ray), those whose title names the replica."""
    title = f"ServeReplica:{APP_NAME}:{deployment}".encode()
    pids = []
    for pid in descendants(os.getpid()):
        try:
            if title in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(pid)
        except OSError:
            continue
    return pids


def _replicas_now(deployment: str, count: int) -> list[int]:
    """``deployment``'s ``count`` replica processes, once no others are left: a replica of an
    app an earlier module deployed on this Ray (same names) exits within moments of Serve's
    shutdown, and is not one of ours."""
    for _ in range(120):
        pids = _replica_pids(deployment)
        if len(pids) == count:
            return pids
        time.sleep(0.5)
    return _replica_pids(deployment)


def test_a_model_replica_killed_under_load_costs_no_request(served: Served) -> None:
    """Model calls are pure: the ingress sends the calls the dead replica held again."""
    victims = _replicas_now("captioner", 2)
    assert len(victims) == 2
    images = [png_base64(colour) for colour in (RED, BLUE, GREEN, YELLOW)]

    async def load() -> list[int]:
        statuses: list[int] = []
        stop = asyncio.Event()

        async def worker(client: httpx.AsyncClient, n: int) -> None:
            while not stop.is_set():
                inputs = {"image": images[n % len(images)]}
                answer = await client.post("/v1/workflows/caption/run", json={"inputs": inputs})
                statuses.append(answer.status_code)

        async with httpx.AsyncClient(base_url=served.url, timeout=120) as client:
            workers = [asyncio.ensure_future(worker(client, n)) for n in range(6)]
            while len(statuses) < 12:  # under way: each replica holds a batch (wait_ms 200)
                await asyncio.sleep(0.05)
            for victim in victims:  # both: the calls they held have nowhere else to go
                os.kill(victim, signal.SIGKILL)
            before = len(statuses)
            while len(statuses) < before + 24:
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.gather(*workers)
        return statuses

    statuses = asyncio.run(load())
    assert statuses.count(200) == len(statuses), sorted(set(statuses))
    wait_ready(served.url)  # Serve replaces the replica; the later tests want both
    assert not set(victims) & set(_replica_pids("captioner"))


def test_a_store_replica_killed_during_ingest_loses_and_duplicates_nothing(
    served: Served,
) -> None:
    """Store calls are idempotent (upserts by id, one transaction each): the ingress sends
    those the dead replica held again, and the client repeats an add answered 503; every
    acknowledged item is stored once (issue 15)."""
    victims = _replicas_now("store", 1)
    assert len(victims) == 1
    acknowledged: set[str] = set()
    errors: list[BaseException] = []

    def ingest(worker: int) -> None:
        with Client(served.url) as client:
            for batch in range(6):
                texts = [f"item {worker}-{batch}-{j} added during a store kill" for j in range(4)]
                try:
                    acknowledged.update(client.collections.add("killed_store", texts=texts)["ids"])
                except Exception as exc:  # reported below with what was acknowledged
                    errors.append(exc)

    workers = [threading.Thread(target=ingest, args=(n,)) for n in range(3)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 300
    while len(acknowledged) < 8 and time.monotonic() < deadline:  # under way
        time.sleep(0.05)
    os.kill(victims[0], signal.SIGKILL)
    for worker in workers:
        worker.join(timeout=600)
    assert not errors, errors
    assert len(acknowledged) == 3 * 6 * 4
    wait_ready(served.url)
    stored = open_store(served.config)  # the served store's folder, read beside it
    assert stored.existing_ids("killed_store", sorted(acknowledged)) == acknowledged  # none lost
    assert stored.get_collection("killed_store").count == len(acknowledged)  # none twice
    assert not set(victims) & set(_replica_pids("store"))  # the kill did happen


def _settings(replicas: int = 2, calls: int = 16) -> dict[str, dict[str, Any]]:
    """Every captioner replica's settings: asks in rounds until all ``replicas`` answered
    (Serve's router may send a whole round to one replica when the load is low)."""
    handle = serve.get_deployment_handle("captioner", app_name=APP_NAME)

    async def collect() -> dict[str, dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for _ in range(20):
            results = await asyncio.gather(*(handle.settings.remote() for _ in range(calls)))
            seen.update({r["replica"]: r for r in results})
            if len(seen) >= replicas:
                break
        return seen

    return asyncio.run(collect())


def _serve_run(config_file: Path) -> None:
    """`serve run CONFIG --non-blocking` against this module's Ray, as an operator would."""
    serve_cli = str(Path(sys.executable).with_name("serve"))
    address = ray.get_runtime_context().gcs_address
    subprocess.run(
        [serve_cli, "run", str(config_file), "--non-blocking", "--address", address],
        check=True,
        timeout=120,
    )


def test_serve_run_of_the_built_config_answers_the_same(served: Served) -> None:
    expected = served.run("caption", image=png_base64(YELLOW))["outputs"]
    output = served.folder / "serve.yaml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mmserve.cli.serve",
            "build",
            "--config",
            str(served.config_path),
            "-o",
            str(output),
        ],
        check=True,
        timeout=120,
    )
    built = yaml.safe_load(output.read_text())
    built["http_options"]["port"] = served.port
    output.write_text(yaml.safe_dump(built))
    serve.delete(APP_NAME)
    _serve_run(output)
    wait_ready(served.url)
    assert served.run("caption", image=png_base64(YELLOW))["outputs"] == expected


def test_new_batch_settings_apply_without_restarting_replicas(served: Served) -> None:
    output = served.folder / "serve.yaml"
    before = _settings()
    assert {s["max_batch_size"] for s in before.values()} == {8}
    # every replica warmed up (in its first reconfigure) before Serve marked it healthy
    assert all(isinstance(s["warmup_s"], float) for s in before.values()), before
    built = yaml.safe_load(output.read_text())
    (captioner,) = [d for d in built["applications"][0]["deployments"] if d["name"] == "captioner"]
    captioner["user_config"] = {"max_batch_size": 3, "batch_wait_timeout_s": 0.02}
    output.write_text(yaml.safe_dump(built))
    _serve_run(output)
    deadline = time.monotonic() + 60
    after = _settings()
    while {s["max_batch_size"] for s in after.values()} != {3} and time.monotonic() < deadline:
        time.sleep(0.5)
        after = _settings()
    assert set(after) == set(before)  # the same replicas, reconfigured in place
    # and a live change does not warm them up again
    assert {r: s["warmup_s"] for r, s in after.items()} == {
        r: s["warmup_s"] for r, s in before.items()
    }
    assert {(s["max_batch_size"], s["batch_wait_timeout_s"]) for s in after.values()} == {(3, 0.02)}
    bodies = asyncio.run(served.run_many("caption", [{"image": png_base64(BLUE)}] * 8))
    assert max(body["trace"][0]["batch_size"] for body in bodies) <= 3


def test_an_unknown_collection_is_a_404_and_no_traceback_in_the_store_log(served: Served) -> None:
    response = httpx.post(
        f"{served.url}/v1/collections/nope/search", json={"text": "x", "top_k": 1}, timeout=60
    )
    assert response.status_code == 404, response.text
    run = httpx.post(
        f"{served.url}/v1/workflows/retrieve_then_answer/run",
        json={"inputs": {"question": "what?", "collection": "nope"}},
        timeout=60,
    )
    assert run.status_code == 404, run.text
    logs = Path(ray._private.worker.global_worker.node.get_session_dir_path()) / "logs" / "serve"
    store_logs = list(logs.glob("replica_mmserve_store_*.log"))
    assert store_logs
    text = "\n".join(p.read_text(errors="replace") for p in store_logs)
    assert "Traceback" not in text and "CollectionNotFoundError" not in text


def test_a_model_that_cannot_load_fails_the_deploy_with_its_reason(served: Served) -> None:
    """Last in the module: the second deploy replaces the served app, with an app of one
    model and one workflow (a redeploy of the whole app would restart every deployment)."""
    fake = {"backend": "fake", "source": "fake://bogus", "cpus": 0.1}
    data = {
        "models": {"captioner": fake},
        "store": {"kind": "memory"},
        "workflows": [str(ROOT / "workflows" / "caption.yaml")],
    }
    config = AppConfig.load(write_config(served.folder, data, name="broken.yaml"))
    # The backend's own check_source refuses it before Ray is touched.
    with pytest.raises(ModelLoadError, match=r"'fake://bogus': unknown fake model option"):
        ServeSession(config, port=served.port).start()
    # A source that passes the check but cannot load (an empty folder) fails in the replica.
    empty = served.folder / "not-a-model"
    empty.mkdir(exist_ok=True)
    data["models"]["captioner"] = {**fake, "backend": "blip-caption", "source": str(empty)}
    config = AppConfig.load(write_config(served.folder, data, name="broken.yaml"))
    with pytest.raises(ServingError, match=r"deployment 'captioner': could not load model"):
        ServeSession(config, port=served.port).start()
