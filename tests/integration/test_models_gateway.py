"""LocalGateway: config lookups, lazy and eager loading, role checks, concurrent calls."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mmserve.config import AppConfig
from mmserve.errors import ConfigError, ModelNotConfiguredError
from mmserve.gateway.local import LocalGateway
from mmserve.models.backends.fake import FAIL_MARKER
from mmserve.models.loader import load_backend
from mmserve.models.roles import CaptionItem, VqaItem

pytestmark = pytest.mark.integration

RED = Image.new("RGB", (24, 24), (220, 30, 30))
BLUE = Image.new("RGB", (40, 16), (30, 60, 220))


def gateway_for(models: dict[str, dict[str, object]], base_dir: Path | None = None) -> LocalGateway:
    return LocalGateway(AppConfig.from_dict({"models": models}, base_dir=base_dir))


@pytest.fixture(scope="module")
def fake() -> LocalGateway:
    return gateway_for(
        {
            "image_encoder": {"backend": "fake", "source": "fake://dim=16"},
            "text_encoder": {"backend": "fake", "source": "fake://dim=16"},
            "captioner": {"backend": "fake", "source": "fake://"},
            "vqa": {"backend": "fake", "source": "fake://"},
        }
    )


def test_lookups_delegate_to_the_config(fake: LocalGateway) -> None:
    assert fake.models() == {
        "image_encoder": "image_encoder",
        "text_encoder": "text_encoder",
        "captioner": "captioner",
        "vqa": "vqa",
    }
    assert fake.model_for("vqa") == "vqa"
    with pytest.raises(ModelNotConfiguredError, match="serves 'captioner', not 'vqa'"):
        fake.model_for("vqa", "captioner")


def test_each_call_is_one_batch_of_its_items(fake: LocalGateway) -> None:
    vectors = asyncio.run(fake.call_batch("image_encoder", "embed_images", [RED, BLUE, RED]))
    assert vectors.batch_size == 3 and len(vectors.items) == 3
    assert all(v.shape == (16,) and v.dtype == np.float32 for v in vectors.items)
    items = [CaptionItem(image=RED, prompt="look:"), CaptionItem(image=BLUE)]
    captions = asyncio.run(fake.call_batch("captioner", "caption", items))
    assert captions.items == ["look: a red image", "a blue image"]
    answer = asyncio.run(fake.call("vqa", "answer", VqaItem(image=BLUE, question="what color?")))
    assert answer.value.text == "blue" and answer.batch_size == 1
    assert answer.replica == "local"
    empty = asyncio.run(fake.call_batch("text_encoder", "embed_texts", []))
    assert empty.items == [] and empty.batch_size == 0


def test_calling_a_model_for_another_role_is_refused(fake: LocalGateway) -> None:
    with pytest.raises(
        ModelNotConfiguredError,
        match="serves the role 'captioner', which has no method 'embed_images' "
        r"\(its methods: caption\)",
    ):
        asyncio.run(fake.call("captioner", "embed_images", RED))
    with pytest.raises(ModelNotConfiguredError, match="no model named 'nope'"):
        asyncio.run(fake.call_batch("nope", "embed_texts", ["x"]))
    with pytest.raises(ModelNotConfiguredError, match="no embedding space"):
        asyncio.run(fake.space("vqa"))


def test_a_failing_item_fails_its_call(fake: LocalGateway) -> None:
    items = [VqaItem(image=RED, question="why?"), VqaItem(image=RED, question=FAIL_MARKER)]
    with pytest.raises(ValueError, match="on purpose"):
        asyncio.run(fake.call_batch("vqa", "answer", items))


def test_a_backend_that_cannot_serve_the_role_is_a_config_error() -> None:
    gateway = gateway_for({"image_encoder": {"backend": "sentence", "source": "x"}})
    with pytest.raises(ConfigError, match="'sentence' does not serve the role 'image_encoder'"):
        gateway.warm()


def test_concurrent_calls_share_one_instance_and_all_complete() -> None:
    gateway = gateway_for(
        {
            "image_encoder": {"backend": "clip", "source": "tiny://clip"},
            "text_encoder": {"backend": "clip", "source": "tiny://clip"},
        }
    )
    gateway.warm()
    assert gateway.backend("image_encoder") is gateway.backend("text_encoder")

    async def many() -> list[np.ndarray]:
        calls = [gateway.call("text_encoder", "embed_texts", f"text {i}") for i in range(6)]
        calls += [gateway.call("image_encoder", "embed_images", RED) for _ in range(6)]
        return [result.value for result in await asyncio.gather(*calls)]

    results = asyncio.run(many())
    expected_red = asyncio.run(gateway.call("image_encoder", "embed_images", RED)).value
    for vector in results[6:]:
        np.testing.assert_allclose(vector, expected_red, atol=1e-6)


def test_every_model_call_runs_on_the_one_model_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # torch runs a model slower once a second thread has run it, so local mode keeps all
    # model calls, of every model and gateway, on one thread.
    gateway = gateway_for(
        {
            "captioner": {"backend": "fake", "source": "fake://"},
            "text_encoder": {"backend": "fake", "source": "fake://dim=8"},
        }
    )
    threads: list[str] = []
    for model, method in (("captioner", "caption"), ("text_encoder", "embed_texts")):
        instance = gateway.backend(model)
        original = getattr(instance, method)

        def record(*args: object, original: Any = original) -> Any:
            threads.append(threading.current_thread().name)
            return original(*args)

        monkeypatch.setattr(instance, method, record)

    async def many() -> None:
        calls = [gateway.call("captioner", "caption", CaptionItem(image=RED)) for _ in range(8)]
        calls += [gateway.call("text_encoder", "embed_texts", f"text {i}") for i in range(8)]
        await asyncio.gather(*calls)

    asyncio.run(many())
    asyncio.run(many())  # a second event loop: still the same thread
    # the 8 concurrent calls of each model ride in one batch: 2 models x 2 loops
    assert len(threads) == 4
    assert set(threads) == {threads[0]}
    assert threads[0].startswith("mmserve-model")


def test_relative_folder_sources_resolve_against_the_config_folder(tmp_path: Path) -> None:
    import shutil

    from mmserve.models.sources.tiny import tiny_model_path

    shutil.copytree(tiny_model_path("vilt-vqa"), tmp_path / "models" / "vilt")
    gateway = gateway_for(
        {"vqa": {"backend": "vilt-vqa", "source": "./models/vilt"}}, base_dir=tmp_path
    )
    item = VqaItem(image=RED, question="what is it?")
    answer = asyncio.run(gateway.call("vqa", "answer", item)).value
    assert answer.score is not None and 0 <= answer.score <= 1


def test_load_backend_caches_by_backend_and_spec() -> None:
    from mmserve.models.spec import ModelSpec

    first = load_backend("fake", ModelSpec(source="fake://dim=8"))
    assert load_backend("fake", ModelSpec(source="fake://dim=8")) is first
    assert load_backend("fake", ModelSpec(source="fake://dim=9")) is not first


def test_concurrent_calls_ride_in_batches_up_to_max_size_and_fail_alone() -> None:
    gateway = gateway_for(
        {"vqa": {"backend": "fake", "source": "fake://", "batch": {"max_size": 8}}}
    )

    async def ask(questions: list[str]) -> list[Any]:
        calls = [gateway.call("vqa", "answer", VqaItem(image=RED, question=q)) for q in questions]
        return await asyncio.gather(*calls, return_exceptions=True)

    twelve = asyncio.run(ask([f"is it red {i}?" for i in range(12)]))
    assert sorted(c.batch_size for c in twelve) == [4] * 4 + [8] * 8
    alone = asyncio.run(ask(["is it red?"]))
    assert alone[0].batch_size == 1
    mixed = asyncio.run(ask(["is it red?", FAIL_MARKER, "is it blue?"]))
    assert isinstance(mixed[1], ValueError)  # only the bad item's caller sees the failure
    assert [mixed[0].value.text, mixed[2].value.text] == [
        twelve[0].value.text,
        asyncio.run(ask(["is it blue?"]))[0].value.text,
    ]
