"""Fidelity of the image path: an upload decoded as the server decodes it (JPEG draft mode,
EXIF orientation) and reduced to the model's input before the call gives what the direct
``transformers`` call gives on the original, full-size, upright image.

The tolerance (docs/performance.md): CLIP vectors at cosine >= 0.999 and the same top-1 label
on camera-sized JPEG photos; captions and answers identical on the shipped examples (there the
reduction is exact: the processor then sees the very same pixels).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from benchmarks.photos import jpeg, synthetic_photo
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
from mmserve.media import coerce_image
from mmserve.media.deferred import DeferredImage
from mmserve.models.roles import CaptionItem, VqaItem

pytestmark = pytest.mark.integration

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "images").glob("*.png"))
LABELS = ["a red circle", "a blue square", "a green triangle", "a yellow sun", "a photo"]
QUESTION = "what colour is the shape?"


@pytest.fixture(scope="module")
def gateway() -> LocalGateway:
    config = AppConfig.from_dict(
        {
            "models": {
                "image_encoder": {"backend": "clip", "source": "tiny://clip"},
                "text_encoder": {"backend": "clip", "source": "tiny://clip"},
                "captioner": {"backend": "blip-caption", "source": "tiny://blip-caption"},
                "vqa": {"backend": "blip-vqa", "source": "tiny://blip-vqa", "max_new_tokens": 5},
                "vilt": {"role": "vqa", "backend": "vilt-vqa", "source": "tiny://vilt-vqa"},
            }
        }
    )
    return LocalGateway(config)


def call(gateway: LocalGateway, model: str, method: str, item: Any) -> Any:
    return asyncio.run(gateway.call(model, method, item)).value


@pytest.fixture(scope="module")
def photos() -> dict[str, tuple[bytes, Image.Image]]:
    """Uploads (JPEG bytes) and the upright originals they show, full size."""
    shot = synthetic_photo(4000, 3000, seed=1)
    wide = synthetic_photo(1920, 1080, seed=2)
    turned = synthetic_photo(1280, 960, seed=3)
    return {
        "4000x3000": (jpeg(shot), shot),
        "1920x1080": (jpeg(wide), wide),
        # stored sideways with EXIF orientation 6: upright, it is the photo turned clockwise
        "1280x960-exif": (
            jpeg(turned, orientation=6),
            turned.transpose(Image.Transpose.ROTATE_270),
        ),
    }


def test_clip_vectors_of_photos_match_the_direct_call(
    gateway: LocalGateway,
    tiny_folder: Callable[[str], Path],
    photos: dict[str, tuple[bytes, Image.Image]],
) -> None:
    folder = tiny_folder("clip")
    processor, model = AutoProcessor.from_pretrained(folder), CLIPModel.from_pretrained(folder)
    texts = np.stack([call(gateway, "text_encoder", "embed_texts", t) for t in LABELS])
    for name, (data, original) in photos.items():
        upload = coerce_image(data, name=name)
        assert isinstance(upload, DeferredImage) or name == "1280x960-exif"
        got = np.asarray(call(gateway, "image_encoder", "embed_images", upload))
        # the reference decodes the upload fully, as Pillow does, and turns it upright
        reference = Image.open(io.BytesIO(data)).convert("RGB")
        if name.endswith("exif"):
            reference = reference.transpose(Image.Transpose.ROTATE_270)
        assert reference.size == original.size
        with torch.no_grad():
            features = model.get_image_features(**processor(images=reference, return_tensors="pt"))
        direct = torch.nn.functional.normalize(features.pooler_output, dim=-1)[0].numpy()
        cosine = float(got @ direct)
        assert cosine >= 0.999, (name, cosine)
        assert int(np.argmax(texts @ got)) == int(np.argmax(texts @ direct)), name
        if isinstance(upload, DeferredImage):
            assert not upload.decoded  # the model's input came from the draft preview


def test_captions_and_answers_of_the_examples_are_identical(
    gateway: LocalGateway, tiny_folder: Callable[[str], Path]
) -> None:
    assert len(EXAMPLES) == 4
    caption_folder, vqa_folder = tiny_folder("blip-caption"), tiny_folder("blip-vqa")
    vilt_folder = tiny_folder("vilt-vqa")
    captioner = BlipForConditionalGeneration.from_pretrained(caption_folder).eval()
    blip_vqa = BlipForQuestionAnswering.from_pretrained(vqa_folder).eval()
    vilt = ViltForQuestionAnswering.from_pretrained(vilt_folder).eval()
    caption_processor = AutoProcessor.from_pretrained(caption_folder)
    vqa_processor = AutoProcessor.from_pretrained(vqa_folder)
    vilt_processor = AutoProcessor.from_pretrained(vilt_folder)
    for path in EXAMPLES:
        original = Image.open(path).convert("RGB")
        upload = coerce_image(path.read_bytes(), name=path.name)
        with torch.no_grad():
            inputs = caption_processor(images=original, return_tensors="pt")
            out = captioner.generate(**inputs, max_new_tokens=30, do_sample=False)
            caption = caption_processor.decode(out[0], skip_special_tokens=True).strip()
            inputs = vqa_processor(images=original, text=QUESTION, return_tensors="pt")
            out = blip_vqa.generate(**inputs, max_new_tokens=5, do_sample=False)
            answer = vqa_processor.decode(out[0], skip_special_tokens=True).strip()
            logits = vilt(**vilt_processor(images=original, text=QUESTION, return_tensors="pt"))
            label = vilt.config.id2label[int(logits.logits[0].argmax())]
        assert call(gateway, "captioner", "caption", CaptionItem(image=upload)) == caption
        item = VqaItem(image=upload, question=QUESTION)
        assert call(gateway, "vqa", "answer", item).text == answer
        assert call(gateway, "vilt", "answer", item).text == label
