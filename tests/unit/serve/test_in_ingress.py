"""Models placed in the ingress, driven in process (Serve's batching needs no Ray): the model
deployment's batching, retry and warm-up on the model thread, the gate that lets calls
arriving during a batch ride together in the next one, and the ingress's model gateway."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmserve.config import AppConfig
from mmserve.errors import ModelNotConfiguredError, ServingError
from mmserve.gateway.local import LocalGateway, model_thread
from mmserve.models.backends.fake import FAIL_MARKER
from mmserve.serve import in_ingress
from mmserve.serve.handles import HandleGateway
from mmserve.serve.in_ingress import IngressModel, PlacedGateway, start_ingress_models
from mmserve.serve.model_server import Served

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _outside_a_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve's batch queue reads max_ongoing_requests from the replica context, to warn; there
    is none here (as in test_model_server.py)."""
    from ray.serve.batching import _BatchQueue

    monkeypatch.setattr(
        _BatchQueue, "_warn_if_max_batch_size_exceeds_max_ongoing_requests", lambda self: None
    )


def _config(**models: dict[str, Any]) -> AppConfig:
    return AppConfig.from_dict({"models": models}, base_dir=ROOT)


def _fake(**options: Any) -> dict[str, Any]:
    return {"backend": "fake", "source": "fake://dim=8", **options}


def _started(**models: dict[str, Any]) -> tuple[AppConfig, dict[str, IngressModel]]:
    config = _config(**models)
    return config, start_ingress_models(config)


def test_models_are_loaded_and_warmed_once_per_shared_weights() -> None:
    config, started = _started(
        image_encoder=_fake(placement="ingress"),
        text_encoder=_fake(placement="ingress"),
        captioner=_fake(),  # a deployment of its own: not loaded here
    )
    assert set(started) == {"image_encoder", "text_encoder"}
    assert started["image_encoder"] is started["text_encoder"]
    settings = started["text_encoder"].settings()
    assert settings["roles"] == ["image_encoder", "text_encoder"]
    assert settings["warmup_s"] is not None  # warmed before the ingress is ready
    assert settings["max_batch_size"] == config.models["text_encoder"].batch.max_size


def _blocking(model: IngressModel, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Make the model's first embed_texts batch wait for ``release``; batch sizes recorded."""
    backend = model._backend
    original = backend.embed_texts
    state: dict[str, Any] = {
        "started": threading.Event(),
        "release": threading.Event(),
        "sizes": [],
        "threads": set(),
    }

    def embed_texts(texts: Sequence[str]) -> Any:
        state["sizes"].append(len(texts))
        state["threads"].add(threading.get_ident())
        if len(state["sizes"]) == 1:
            state["started"].set()
            state["release"].wait(timeout=30)
        return original(texts)

    monkeypatch.setattr(backend, "embed_texts", embed_texts)
    return state


def test_calls_arriving_during_a_batch_ride_together_in_the_next_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the gate, Serve's batcher cuts each call that arrives while a batch runs into
    a batch of its own (here: five batches of one after the first)."""
    _, started = _started(text_encoder=_fake(placement="ingress", batch={"max_size": 8}))
    model = started["text_encoder"]
    state = _blocking(model, monkeypatch)

    async def scenario() -> list[Served[Any]]:
        first = asyncio.ensure_future(model.call("embed_texts", "first"))
        await asyncio.to_thread(state["started"].wait, 30)
        later = []
        for index in range(5):  # one at a time, as HTTP requests arrive
            later.append(asyncio.ensure_future(model.call("embed_texts", f"text {index}")))
            await asyncio.sleep(0.01)
        state["release"].set()
        return list(await asyncio.gather(first, *later))

    results = asyncio.run(scenario())
    assert [result.batch_size for result in results] == [1, 5, 5, 5, 5, 5]
    assert state["sizes"] == [1, 5]
    # every batch ran on the process's one model thread, off the event loop
    (thread,) = state["threads"]
    assert thread == model_thread().submit(threading.get_ident).result()


def test_a_failed_batch_is_retried_item_by_item() -> None:
    _, started = _started(text_encoder=_fake(placement="ingress"))
    model = started["text_encoder"]

    async def scenario() -> list[Any]:
        texts = ["fine", f"bad {FAIL_MARKER}", "also fine"]
        calls = [model.call("embed_texts", text) for text in texts]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    good, bad, also_good = asyncio.run(scenario())
    assert isinstance(bad, ValueError) and "on purpose" in str(bad)
    assert isinstance(good, Served) and isinstance(also_good, Served)
    assert good.value.shape == (8,)


def test_the_gateway_calls_models_in_the_ingress_here_and_the_others_remotely() -> None:
    config, started = _started(
        text_encoder=_fake(placement="ingress", batch={"max_size": 4}),
        captioner=_fake(),
    )
    remote = LocalGateway(config)  # stands for the model deployments' handles
    gateway = PlacedGateway(config, remote, started)
    assert gateway.models() == {"text_encoder": "text_encoder", "captioner": "captioner"}
    assert gateway.model_for("text_encoder") == "text_encoder"

    async def scenario() -> Any:
        texts = [f"text {i}" for i in range(6)]
        batched = await gateway.call_batch("text_encoder", "embed_texts", texts)
        one = await gateway.call("text_encoder", "embed_texts", "text 0")
        space = await gateway.space("text_encoder")
        # a backend's own failure reads as a model deployment's would
        with pytest.raises(ServingError, match="model 'text_encoder' failed: ValueError"):
            await gateway.call("text_encoder", "embed_texts", FAIL_MARKER)
        with pytest.raises(ModelNotConfiguredError, match="no method 'caption'"):
            await gateway.call("text_encoder", "caption", "x")
        # the captioner goes to the remote gateway, which raises the backend's error as is
        with pytest.raises(ValueError, match="on purpose"):
            await gateway.call("captioner", "caption", _bad_caption())
        return batched, one, space

    batched, one, space = asyncio.run(scenario())
    assert len(batched.items) == 6 and 1 <= batched.batch_size <= 4
    assert np.allclose(batched.items[0], one.value)
    assert space.dim == 8 and space.backend == "fake"


def _bad_caption() -> Any:
    from PIL import Image

    from mmserve.models.roles import CaptionItem

    return CaptionItem(image=Image.new("RGB", (4, 4)), prompt=FAIL_MARKER)


def test_the_handle_gateway_needs_no_handle_for_a_model_in_the_ingress() -> None:
    config = _config(text_encoder=_fake(placement="ingress"), captioner=_fake())
    with pytest.raises(ModelNotConfiguredError, match="captioner"):
        HandleGateway(config, {})
    HandleGateway(_config(text_encoder=_fake(placement="ingress")), {})


def test_a_model_cheaper_than_the_thread_hop_runs_on_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the fake model takes well under a second a batch even on a busy machine (the 2 ms
    # default is a latency bar, not something a test can rely on)
    monkeypatch.setattr(in_ingress, "INLINE_BELOW_S", 1.0)
    _, started = _started(text_encoder=_fake(placement="ingress"))
    model = started["text_encoder"]
    original = model._backend.embed_texts
    threads: list[int] = []

    def embed_texts(texts: Sequence[str]) -> Any:
        threads.append(threading.get_ident())
        return original(texts)

    monkeypatch.setattr(model._backend, "embed_texts", embed_texts)

    async def scenario() -> int:
        for text in ("one", "two", "three"):
            await model.call("embed_texts", text)
        return threading.get_ident()

    loop_thread = asyncio.run(scenario())
    model_thread_id = model_thread().submit(threading.get_ident).result()
    # the first batch's cost is unknown: the model thread; the fake model then takes well
    # under INLINE_BELOW_S a batch, so the next ones run on the loop
    assert threads == [model_thread_id, loop_thread, loop_thread]
