"""The model-size reduction: the processors' own geometry, so a model sees the same pixels."""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np
import pytest
from benchmarks.photos import jpeg, synthetic_photo
from PIL import Image
from transformers import BlipImageProcessorPil, CLIPImageProcessorPil, ViltImageProcessorPil

from mmserve.errors import InputError
from mmserve.media.deferred import PREVIEW_MIN_EDGE, DeferredImage, open_upload
from mmserve.media.sizes import ImageInput, for_model, image_input_of

pytestmark = pytest.mark.unit

#: The processors of the real checkpoints: CLIP ViT-B/32, BLIP base, ViLT VQA.
PROCESSORS: dict[str, tuple[Any, dict[str, Any]]] = {
    "clip": (CLIPImageProcessorPil(), {}),
    "blip": (BlipImageProcessorPil(size={"height": 384, "width": 384}), {}),
    "vilt": (ViltImageProcessorPil(), {"longest_edge": 639, "size_divisor": 32}),
}
SIZES = [(1600, 1200), (1080, 1920), (300, 200), (100, 90), (5000, 251)]


def pixels(processor: Any, image: Image.Image) -> np.ndarray:
    return np.asarray(processor(images=[image], return_tensors="np")["pixel_values"][0])


@pytest.mark.parametrize("model", sorted(PROCESSORS))
def test_the_processor_gives_a_reduced_image_the_same_pixels(model: str) -> None:
    processor, overrides = PROCESSORS[model]
    needs = image_input_of(processor, **overrides)
    assert needs is not None
    for width, height in SIZES:
        image = synthetic_photo(width, height, seed=width)
        reduced = for_model(image, needs)
        assert max(reduced.size) <= 640, (width, height, reduced.size)
        np.testing.assert_array_equal(pixels(processor, reduced), pixels(processor, image))


def test_clip_input_is_read_from_its_processor() -> None:
    needs = image_input_of(CLIPImageProcessorPil())
    assert needs == ImageInput(shortest_edge=224, crop=(224, 224), resample=3)
    assert needs.resized(4000, 3000) == (298, 224)


def test_a_processor_that_does_not_resize_states_nothing() -> None:
    assert image_input_of(CLIPImageProcessorPil(do_resize=False)) is None
    assert image_input_of(object()) is None


def test_a_large_jpeg_reaches_the_model_without_a_full_decode() -> None:
    data = jpeg(synthetic_photo(4000, 3000))
    image = open_upload(data)
    assert isinstance(image, DeferredImage) and image.size == (4000, 3000)
    assert min(image.preview.size) >= PREVIEW_MIN_EDGE and image.preview.size[0] < 4000
    needs = image_input_of(CLIPImageProcessorPil())
    assert needs is not None
    reduced = for_model(image, needs)
    assert reduced.size == (224, 224) and not image.decoded
    assert len(pickle.dumps(reduced)) < 200_000  # what crosses to a model replica


def test_the_door_decodes_the_smallest_draft_and_a_larger_input_gets_a_larger_one() -> None:
    # sideways (EXIF 6): the drafts are turned upright too
    image = open_upload(jpeg(synthetic_photo(4000, 3000), orientation=6))
    assert isinstance(image, DeferredImage) and image.size == (3000, 4000)
    assert image.preview.size == (375, 500)  # 1/8: the cheapest decode of the whole stream
    blip = for_model(image, ImageInput(height=384, width=384))
    assert blip.size == (384, 384) and not image.decoded
    assert image.covering(384, 384).size == (750, 1000)  # the 1/4 draft, made once
    assert image.covering(384, 384) is image.covering(700, 900)
    assert image.covering(2000, 2000) is image and image.decoded


def test_the_full_pixels_of_a_deferred_image_are_the_original_ones() -> None:
    data = jpeg(synthetic_photo(1600, 1200))
    image = open_upload(data)
    assert isinstance(image, DeferredImage)
    plain = Image.open(io.BytesIO(data)).convert("RGB")
    assert image.tobytes() == plain.tobytes() and image.decoded
    copied = pickle.loads(pickle.dumps(image))
    assert type(copied) is Image.Image and copied.tobytes() == plain.tobytes()


@pytest.mark.parametrize("size", [(1600, 1200), (200, 150)])
def test_exif_orientation_is_applied(size: tuple[int, int]) -> None:
    photo = synthetic_photo(*size)
    image = open_upload(jpeg(photo, orientation=6))  # stored sideways: turn 90 clockwise
    assert image.size == (size[1], size[0])
    upright = Image.open(io.BytesIO(jpeg(photo))).convert("RGB")
    expected = upright.transpose(Image.Transpose.ROTATE_270)
    assert image.tobytes() == expected.tobytes()
    if isinstance(image, DeferredImage):
        assert image.preview.size[0] < image.preview.size[1]


def test_a_truncated_large_jpeg_is_refused_at_the_door() -> None:
    data = jpeg(synthetic_photo(2400, 1800))
    with pytest.raises(InputError, match="corrupt or truncated"):
        open_upload(data[: len(data) // 2], name="photo")


def test_a_size_rule_not_mirrored_gets_no_less_than_the_processor_uses() -> None:
    needs = ImageInput(shortest_edge=100, longest_edge=300, exact=False)
    image = synthetic_photo(2000, 500)
    target = needs.resized(*image.size)
    reduced = for_model(image, needs)
    assert reduced.size[0] >= target[0] and reduced.size[1] >= target[1]
    assert reduced.size[0] < 2000 and abs(reduced.size[0] / reduced.size[1] - 4) < 0.05
    small = synthetic_photo(120, 90)
    assert for_model(small, needs) is small  # already no larger than it will be used
