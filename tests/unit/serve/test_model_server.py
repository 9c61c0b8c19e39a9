"""The generic model deployment class, driven in process (Serve's batching needs no Ray):
one batch queue per role method and batch key, and a failed batch retried item by item."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from PIL import Image

from mmserve.errors import ModelNotConfiguredError
from mmserve.models.backends.fake import FAIL_MARKER
from mmserve.models.roles import CaptionItem, VqaItem
from mmserve.models.spec import ModelSpec
from mmserve.serve.model_server import ModelServer, Served

pytestmark = pytest.mark.unit

RED = Image.new("RGB", (16, 16), (220, 30, 30))
ROLES = ["captioner", "text_encoder", "vqa"]


@pytest.fixture(autouse=True)
def _outside_a_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve's batch queue only warns, at creation, when max_batch_size exceeds the replica's
    max_ongoing_requests, which it reads from the replica context; there is none here."""
    from ray.serve.batching import _BatchQueue

    monkeypatch.setattr(
        _BatchQueue, "_warn_if_max_batch_size_exceeds_max_ongoing_requests", lambda self: None
    )


def _server(max_batch: int = 8, wait_s: float = 0.05) -> ModelServer:
    server = ModelServer("fake", ModelSpec(source="fake://").model_dump(), ROLES)
    server.reconfigure({"max_batch_size": max_batch, "batch_wait_timeout_s": wait_s})
    return server


async def _gather(server: ModelServer, calls: list[tuple[str, Any]]) -> list[Any]:
    return await asyncio.gather(
        *(server.call(method, item) for method, item in calls), return_exceptions=True
    )


def test_concurrent_calls_of_one_method_share_a_batch_and_each_gets_its_result() -> None:
    server = _server()
    prompts = ["a", "b", None, "c"]
    calls = [("caption", CaptionItem(image=RED, prompt=p)) for p in prompts]
    results = asyncio.run(_gather(server, calls))
    assert [r.value for r in results] == [
        "a a red image",
        "b a red image",
        "a red image",
        "c a red image",
    ]
    assert {r.batch_size for r in results} == {4}
    assert {r.replica for r in results} == {"local"}
    assert server.settings()["methods"] == ["answer", "caption", "embed_texts"]


def test_each_method_has_its_own_queue() -> None:
    server = _server()
    calls: list[tuple[str, Any]] = [("embed_texts", f"text {i}") for i in range(3)]
    calls += [("answer", VqaItem(image=RED, question="what color?")) for _ in range(2)]
    results = asyncio.run(_gather(server, calls))
    assert [r.batch_size for r in results] == [3, 3, 3, 2, 2]
    assert [r.value.text for r in results[3:]] == ["red", "red"]


def test_one_bad_item_fails_only_its_own_call() -> None:
    server = _server()
    prompts = ["fine", FAIL_MARKER, "also fine", None]
    calls = [("caption", CaptionItem(image=RED, prompt=p)) for p in prompts]
    results = asyncio.run(_gather(server, calls))
    assert isinstance(results[1], ValueError) and "on purpose" in str(results[1])
    good = [results[i] for i in (0, 2, 3)]
    assert all(isinstance(r, Served) for r in good), good
    assert [r.value for r in good] == ["fine a red image", "also fine a red image", "a red image"]
    assert {r.batch_size for r in good} == {1}  # re-run one by one after the batch failed


def test_new_settings_reach_every_existing_queue() -> None:
    server = _server()

    async def scenario() -> list[Any]:
        await _gather(server, [("embed_texts", "warm")])  # creates the queue
        server.reconfigure({"max_batch_size": 2, "batch_wait_timeout_s": 0.05})
        return await _gather(server, [("embed_texts", f"t{i}") for i in range(5)])

    results = asyncio.run(scenario())
    assert max(r.batch_size for r in results) == 2
    assert server.settings()["max_batch_size"] == 2


def test_a_method_the_roles_lack_is_refused_naming_the_methods() -> None:
    server = _server()
    with pytest.raises(ModelNotConfiguredError, match="no method 'embed_images'.*caption"):
        asyncio.run(server.call("embed_images", RED))
