"""The diffusion backends on the tiny pipelines, called as the gateways call them: sizes,
seeds, batches, edits keeping the size, and the model-dependent input checks."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmserve.errors import InputError, InputTooLargeError
from mmserve.models.backends.diffusion import InstructPix2PixBackend, TextToImageBackend
from mmserve.models.roles.images import EditItem, GenerateItem, edit_batch_key, generate_batch_key
from mmserve.models.spec import ModelSpec

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def digest(image: Image.Image) -> str:
    return hashlib.sha256(png(image)).hexdigest()


@pytest.fixture(scope="module")
def generator() -> TextToImageBackend:
    return TextToImageBackend(ModelSpec(source="tiny://stable-diffusion", max_pixels=128 * 128))


@pytest.fixture(scope="module")
def editor() -> InstructPix2PixBackend:
    return InstructPix2PixBackend(ModelSpec(source="tiny://instruct-pix2pix", max_steps=4))


def item(**fields: object) -> GenerateItem:
    return GenerateItem.model_validate(
        {"prompt": "a red circle", "width": 64, "height": 48, **fields}
    )


def test_generate_makes_images_of_the_requested_size(generator: TextToImageBackend) -> None:
    (image,) = generator.generate([item()])
    assert image.size == (64, 48) and image.mode == "RGB"
    (tall,) = generator.generate([item(width=32, height=96, steps=2, seed=3)])
    assert tall.size == (32, 96)


def test_same_seed_same_bytes_different_seed_different_image(
    generator: TextToImageBackend,
) -> None:
    (first,) = generator.generate([item(seed=7)])
    (again,) = generator.generate([item(seed=7)])
    (other,) = generator.generate([item(seed=8)])
    assert png(first) == png(again)
    assert png(first) != png(other)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_an_item_gives_the_same_image_alone_or_in_a_batch(generator: TextToImageBackend) -> None:
    """Each item draws its noise from its own generator: batch mates change nothing but
    the last bit of a float here and there (batched CPU kernels round differently), which
    may move a pixel value by one step. Repeating the same batch gives the same bytes."""
    alone = [generator.generate([one])[0] for one in (item(seed=1), item(seed=2))]
    together = generator.generate([item(seed=1), item(prompt="a blue square", seed=2)])
    batch = generator.generate([item(seed=1), item(seed=2)])
    for in_batch, single in [(together[0], alone[0]), *zip(batch, alone, strict=True)]:
        difference = np.abs(pixels(in_batch) - pixels(single))
        assert difference.max() <= 1
        assert (difference > 0).mean() < 0.01
    assert np.abs(pixels(together[1]) - pixels(alone[1])).max() > 1  # another prompt
    again = generator.generate([item(seed=1), item(seed=2)])
    assert [png(image) for image in again] == [png(image) for image in batch]


def test_guidance_and_negative_prompt_change_the_image(generator: TextToImageBackend) -> None:
    plain = generator.generate([item(guidance=4.0)])[0]
    negative = generator.generate([item(guidance=4.0, negative_prompt="blue")])[0]
    assert plain.size == negative.size == (64, 48)
    assert png(plain) != png(negative)


def test_batch_keys_separate_sizes_steps_and_guidance() -> None:
    keys = {
        generate_batch_key(one)
        for one in (item(), item(width=72), item(height=56), item(steps=2), item(guidance=3))
    }
    assert len(keys) == 5
    assert generate_batch_key(item(seed=1)) == generate_batch_key(item(seed=9, prompt="x"))
    red = Image.new("RGB", (40, 32), "red")
    edits = {
        edit_batch_key(EditItem(image=image, instruction="x", **extra))  # type: ignore[arg-type]
        for image, extra in (
            (red, {}),
            (red.resize((48, 32)), {}),
            (red, {"steps": 2}),
            (red, {"image_guidance": 2.0}),
        )
    }
    assert len(edits) == 4


def test_a_batch_mixing_keys_is_refused(generator: TextToImageBackend) -> None:
    with pytest.raises(InputError, match="share its settings"):
        generator.generate([item(), item(width=72)])


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"width": 60}, InputError, r"multiples of 8 .* got 60x48"),
        ({"height": 4}, InputError, "multiples of 8"),
        ({"width": 256, "height": 256}, InputTooLargeError, "over this model's limit of 16384"),
        ({"steps": 51}, InputError, "steps=51 is over this model's limit of 50"),
    ],
)
def test_sizes_and_steps_the_model_cannot_take_are_refused(
    generator: TextToImageBackend, fields: dict[str, int], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        generator.generate([item(**fields)])


@pytest.mark.parametrize("fields", [{"prompt": ""}, {"prompt": "   "}, {"seed": -1}])
def test_items_without_a_prompt_or_with_a_negative_seed_are_invalid(
    fields: dict[str, object],
) -> None:
    with pytest.raises(ValueError):
        item(**fields)


def test_edit_keeps_the_size_rounded_down_to_the_multiple(editor: InstructPix2PixBackend) -> None:
    photo = Image.open(ROOT / "examples" / "images" / "red_circle.png").convert("RGB")
    exact = photo.resize((64, 40))
    odd = photo.resize((70, 45))
    (same,) = editor.edit([EditItem(image=exact, instruction="make it snow", steps=2)])
    (rounded,) = editor.edit([EditItem(image=odd, instruction="make it snow", steps=2)])
    assert same.size == (64, 40)
    assert rounded.size == (64, 40)
    assert editor.output_size((70, 45)) == (64, 40)


def test_edit_is_deterministic_per_seed_and_per_item(editor: InstructPix2PixBackend) -> None:
    image = Image.new("RGB", (48, 48), "green")
    one = EditItem(image=image, instruction="make it snow", steps=2, seed=5)
    other = EditItem(image=image.rotate(90), instruction="add fire", steps=2, seed=5)
    (alone,) = editor.edit([one])
    (again,) = editor.edit([one])
    batch = editor.edit([one, other])
    assert png(alone) == png(again)
    assert np.abs(pixels(batch[0]) - pixels(alone)).max() <= 1  # see the generator's test
    assert png(batch[1]) != png(alone)


def test_edit_refuses_too_many_steps_and_too_small_images(editor: InstructPix2PixBackend) -> None:
    image = Image.new("RGB", (48, 48), "green")
    with pytest.raises(InputError, match="steps=5 is over this model's limit of 4"):
        editor.edit([EditItem(image=image, instruction="x", steps=5)])
    with pytest.raises(InputError, match="at least 8 pixels"):
        editor.edit([EditItem(image=Image.new("RGB", (5, 40)), instruction="x", steps=1)])
