"""The fake model plugin: deterministic, weight-free, and meaningful enough to test workflows."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mmserve.errors import InputError, ModelLoadError
from mmserve.models.base import ROLE_PROTOCOLS, ModelSpec
from mmserve.models.fake import DEFAULT_DIM, FakeBackend, dominant_colours
from mmserve.registry import registry

pytestmark = pytest.mark.unit

RED = Image.new("RGB", (32, 32), (230, 20, 20))
BLUE = Image.new("RGB", (20, 50), (20, 40, 230))


def half_and_half(left: tuple[int, int, int], right: tuple[int, int, int]) -> Image.Image:
    image = Image.new("RGB", (40, 40), left)
    image.paste(Image.new("RGB", (20, 40), right), (20, 0))
    return image


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend(ModelSpec(source="fake://"))


def test_registered_for_every_role_and_satisfies_the_protocols(fake: FakeBackend) -> None:
    assert registry.get("model", "fake") is FakeBackend
    for role, protocol in ROLE_PROTOCOLS.items():
        assert role in FakeBackend.roles
        assert isinstance(fake, protocol)


def test_importing_it_does_not_import_torch() -> None:
    code = "import sys, mmserve.models.fake; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_vectors_are_deterministic_unit_norm_float32(fake: FakeBackend) -> None:
    texts = fake.embed_texts(["a red car", "", "A RED car!"])
    images = fake.embed_images([RED, BLUE])
    for vectors, count in ((texts, 3), (images, 2)):
        assert vectors.shape == (count, DEFAULT_DIM) and vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    again = FakeBackend(ModelSpec(source="fake://")).embed_texts(["a red car"])
    np.testing.assert_array_equal(texts[0], again[0])
    np.testing.assert_allclose(texts[0], texts[2], atol=1e-6)  # case and punctuation ignored
    assert fake.embed_texts([]).shape == (0, DEFAULT_DIM)
    assert fake.embed_images([]).shape == (0, DEFAULT_DIM)


def test_dim_comes_from_the_source() -> None:
    fake = FakeBackend(ModelSpec(source="fake://dim=7"))
    assert fake.space.dim == 7 and fake.space.backend == "fake"
    assert fake.embed_images([RED]).shape == (1, 7)


@pytest.mark.parametrize("source", ["fake://dim=0", "fake://size=3", "fake://dim=x", "tiny://clip"])
def test_bad_sources_are_refused_clearly(source: str) -> None:
    with pytest.raises(ModelLoadError, match="fake"):
        FakeBackend(ModelSpec(source=source))


def test_a_colour_word_retrieves_the_image_of_that_colour(fake: FakeBackend) -> None:
    images = fake.embed_images([RED, BLUE])
    red_query, blue_query = fake.embed_texts(["red", "blue"])
    assert np.argmax(images @ red_query) == 0
    assert np.argmax(images @ blue_query) == 1


def test_captions_name_the_dominant_colours(fake: FakeBackend) -> None:
    mixed = half_and_half((230, 20, 20), (250, 250, 250))
    assert fake.caption([RED, BLUE, mixed]) == [
        "a red image",
        "a blue image",
        "a red and white image",
    ]
    assert fake.caption([RED, BLUE], ["a photo of", "  "]) == [
        "a photo of a red image",
        "a blue image",
    ]
    assert set(dominant_colours(mixed)) == {"red", "white"}
    with pytest.raises(InputError):
        fake.caption([RED], ["a", "b"])


def test_answers_follow_simple_rules(fake: FakeBackend) -> None:
    questions = ["What color is it?", "Is it red?", "is it blue?", "how many cats?"]
    answers = fake.answer([RED] * 4, questions)
    assert [a.text for a in answers] == ["red", "yes", "no", "1"]
    assert all(a.score == 1.0 for a in answers)
    with pytest.raises(InputError, match="one question per image"):
        fake.answer([RED, BLUE], ["why?"])
