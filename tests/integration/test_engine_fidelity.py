"""Fidelity through the whole engine: the shipped workflows on the tiny profile give what
direct transformers calls give on the same model folders, and concurrent runs equal single runs.

The reference side is written from the Hugging Face API (processor -> model -> decode), never
through mmserve's backend code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoProcessor, BlipForConditionalGeneration, CLIPModel

from mmserve.config import AppConfig
from mmserve.local.mode import LocalApp

ROOT = Path(__file__).resolve().parents[2]
IMAGES = sorted((ROOT / "examples" / "images").glob("*.png"))


@pytest.fixture(scope="module")
def app() -> LocalApp:
    config = AppConfig.load(ROOT / "deployments" / "tiny.yaml")
    return LocalApp(
        config.model_copy(update={"store": config.store.model_copy(update={"kind": "memory"})})
    )


def test_caption_workflow_equals_blip_generate(
    app: LocalApp, tiny_folder: Callable[[str], Path]
) -> None:
    folder = tiny_folder("blip-caption")
    processor = AutoProcessor.from_pretrained(folder)
    model = BlipForConditionalGeneration.from_pretrained(folder).eval()
    max_new_tokens = app.config.models["captioner"].max_new_tokens

    def direct(image: Image.Image) -> str:
        with torch.inference_mode():
            inputs = processor(images=image, return_tensors="pt")
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        return str(processor.decode(out[0], skip_special_tokens=True)).strip()

    async def through_engine() -> list[Any]:
        # all images at once: the runs overlap, and each must still equal its own direct call
        runs = [app.run("caption", {"image": path.read_bytes()}) for path in IMAGES]
        return list(await asyncio.gather(*runs))

    results = asyncio.run(through_engine())
    for path, result in zip(IMAGES, results, strict=True):
        assert result.outputs["caption"] == direct(Image.open(path).convert("RGB"))


def test_classify_workflow_equals_clip_zero_shot(
    app: LocalApp, tiny_folder: Callable[[str], Path]
) -> None:
    folder = tiny_folder("clip")
    processor = AutoProcessor.from_pretrained(folder)
    model = CLIPModel.from_pretrained(folder).eval()
    labels = ["circle", "square", "triangle", "sun"]
    image = Image.open(IMAGES[0]).convert("RGB")
    with torch.inference_mode():
        pixel = processor(images=image, return_tensors="pt")
        text = processor(
            text=[f"a photo of a {label}" for label in labels], return_tensors="pt", padding=True
        )
        image_vec = model.get_image_features(**pixel).pooler_output
        text_vec = model.get_text_features(**text).pooler_output
    image_vec = image_vec / image_vec.norm(dim=-1, keepdim=True)
    text_vec = text_vec / text_vec.norm(dim=-1, keepdim=True)
    expected = torch.softmax(100.0 * (text_vec @ image_vec[0]).double(), dim=0).numpy()

    result = asyncio.run(app.run("classify", {"image": IMAGES[0].read_bytes(), "labels": labels}))
    got = {
        entry["label"]: entry["score"]
        for entry in result.model_dump(mode="json")["outputs"]["scores"]
    }
    np.testing.assert_allclose([got[label] for label in labels], expected, atol=1e-4)
    assert result.outputs["label"] == labels[int(np.argmax(expected))]
