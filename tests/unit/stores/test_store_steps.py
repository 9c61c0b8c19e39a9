"""The index and retrieve steps over a fake gateway and the memory store."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fake_gateway import JOINT, WORDS, FakeGateway  # type: ignore[import-not-found]
from PIL import Image
from pydantic import ValidationError

from mmserve.errors import EmbeddingSpaceMismatchError, InputError, StoreError
from mmserve.registry import registry
from mmserve.stores import MemoryStore, image_content_id
from mmserve.workflow.run.context import StepContext
from mmserve.workflow.steps.index import Index
from mmserve.workflow.steps.retrieve import Retrieve

pytestmark = pytest.mark.unit


def _run(step: Any, ctx: StepContext, **inputs: Any) -> Any:
    return asyncio.run(step.run(step.Inputs(**inputs), ctx))


@pytest.fixture
def ctx() -> StepContext:
    return StepContext(step_id="s", gateway=FakeGateway(), store=MemoryStore())


def _square(colour: str) -> Image.Image:
    return Image.new(
        "RGB",
        (8, 8),
        tuple(
            int(255 * c) for c in {"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1)}[colour]
        ),
    )


def test_steps_are_registered() -> None:
    assert registry.get("step", "index") is Index
    assert registry.get("step", "retrieve") is Retrieve


def test_text_to_text(ctx: StepContext) -> None:
    out = _run(Index(), ctx, collection="notes", texts=["red car", "green tree", "blue sea"])
    assert (out.inserted, out.updated, out.count) == (3, 0, 3)
    assert ctx.batch_size == 3
    found = _run(Retrieve(), ctx, collection="notes", query="a blue whale", top_k=2)
    assert found.matches[0].payload.text == "blue sea"
    assert found.matches[0].score > found.matches[1].score
    assert ctx.store.get_collection("notes").space == JOINT


def test_reindexing_the_same_content_adds_nothing(ctx: StepContext) -> None:
    first = _run(Index(), ctx, collection="notes", texts=["red", "green"])
    again = _run(Index(), ctx, collection="notes", texts=["green", "red"], metadata={"v": 2})
    assert sorted(first.ids) == sorted(again.ids)
    assert (again.inserted, again.updated, again.count) == (0, 2, 2)


def test_text_to_image_returns_the_stored_image(ctx: StepContext) -> None:
    images = [_square(c) for c in ("red", "green", "blue")]
    out = _run(Index(), ctx, collection="pics", images=images, metadata={"album": "a"})
    assert out.ids == [image_content_id(i) for i in images]
    [match] = _run(Retrieve(), ctx, collection="pics", query="something green", top_k=1).matches
    assert match.id == image_content_id(images[1])
    assert match.payload.image.getpixel((0, 0)) == (0, 255, 0)
    assert match.payload.metadata == {"album": "a"}


def test_image_to_text_and_image_to_image(ctx: StepContext) -> None:
    _run(Index(), ctx, collection="notes", texts=["red", "green", "blue"])
    _run(Index(), ctx, collection="pics", images=[_square("red"), _square("blue")])
    by_image = _run(Retrieve(), ctx, collection="notes", image=_square("blue"), top_k=1)
    assert by_image.matches[0].payload.text == "blue"
    to_image = _run(Retrieve(), ctx, collection="pics", image=_square("red"), top_k=1)
    assert to_image.matches[0].payload.image.getpixel((0, 0)) == (255, 0, 0)


def test_include_images_false_leaves_them_out(ctx: StepContext) -> None:
    _run(Index(), ctx, collection="pics", image=_square("red"))
    found = _run(Retrieve(), ctx, collection="pics", query="red", include_images=False)
    assert found.matches[0].payload.image is None


def test_the_encoder_is_picked_by_the_collection_space(ctx: StepContext) -> None:
    _run(Index(), ctx, collection="words", texts=["red", "blue"], model="words")
    assert ctx.store.get_collection("words").space == WORDS
    found = _run(Retrieve(), ctx, collection="words", query="blue", top_k=1)
    assert found.matches[0].payload.text == "blue"
    assert ("words", 1) in ctx.gateway.calls  # the default text encoder was not used


def test_an_explicit_encoder_of_another_space_is_refused(ctx: StepContext) -> None:
    _run(Index(), ctx, collection="notes", texts=["red"])
    with pytest.raises(EmbeddingSpaceMismatchError) as info:
        _run(Retrieve(), ctx, collection="notes", query="red", model="words")
    assert str(JOINT) in str(info.value) and str(WORDS) in str(info.value)


def test_no_encoder_of_the_space_is_refused_naming_both() -> None:
    ctx = StepContext(step_id="s", gateway=FakeGateway(), store=MemoryStore())
    _run(Index(), ctx, collection="words", texts=["red"], model="words")
    with pytest.raises(EmbeddingSpaceMismatchError) as info:
        _run(Retrieve(), ctx, collection="words", image=_square("red"))
    assert str(WORDS) in str(info.value) and str(JOINT) in str(info.value)


def test_modalities_do_not_mix(ctx: StepContext) -> None:
    _run(Index(), ctx, collection="notes", texts=["red"])
    with pytest.raises(InputError, match="holds text items"):
        _run(Index(), ctx, collection="notes", image=_square("red"))


def test_inputs_need_exactly_one_source() -> None:
    with pytest.raises(ValidationError, match="exactly one of text, texts, image, images"):
        Index.Inputs(collection="c", text="a", texts=["b"])
    with pytest.raises(ValidationError, match="exactly one of query"):
        Retrieve.Inputs(collection="c")


def test_ids_must_match_the_items(ctx: StepContext) -> None:
    with pytest.raises(InputError, match="2 ids for 1 items"):
        _run(Index(), ctx, collection="notes", text="red", ids=["a", "b"])
    out = _run(Index(), ctx, collection="notes", text="red", ids=["mine"])
    assert out.ids == ["mine"]


def test_no_store_and_empty_collection_are_clear_errors(ctx: StepContext) -> None:
    bare = StepContext(step_id="s", gateway=FakeGateway(), store=None)
    with pytest.raises(StoreError, match="no.*configured|none is configured"):
        _run(Retrieve(), bare, collection="c", query="x")
    ctx.store.create_collection("empty", space=JOINT, modality="text")
    with pytest.raises(InputError, match="is empty"):
        _run(Retrieve(), ctx, collection="empty", query="x")
