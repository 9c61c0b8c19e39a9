"""The fake model plugin: deterministic, weight-free, and meaningful enough to test workflows."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from mmserve.errors import ModelLoadError
from mmserve.models.backends import fake as fake_module
from mmserve.models.backends.fake import DEFAULT_DIM, FAIL_MARKER, FakeBackend, dominant_colours
from mmserve.models.roles import CaptionItem, VqaItem, role_spec
from mmserve.models.spec import ModelSpec
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


def test_registered_for_every_builtin_role_with_all_their_methods(fake: FakeBackend) -> None:
    assert registry.get("model", "fake") is FakeBackend
    for role in ("image_encoder", "text_encoder", "captioner", "vqa"):
        assert role in FakeBackend.roles
        spec = role_spec(role)
        assert spec.methods and spec.missing_methods(fake) == []


def test_importing_it_does_not_import_torch() -> None:
    code = "import sys, mmserve.models.backends.fake; print('torch' in sys.modules)"
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


def test_delay_ms_makes_every_call_take_that_long_asleep(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(fake_module.time, "sleep", slept.append)
    fake = FakeBackend(ModelSpec(source="fake://dim=7,delay_ms=250"))
    assert fake.space.dim == 7
    fake.embed_texts(["a red car", "a blue boat"])  # one call, one delay, whatever its size
    fake.embed_images([RED])
    assert slept == [0.25, 0.25]
    FakeBackend(ModelSpec(source="fake://dim=7")).embed_texts(["a red car"])
    assert slept == [0.25, 0.25]  # no delay unless asked


def test_gate_holds_loading_until_its_file_exists(tmp_path: Path) -> None:
    gate = tmp_path / "open"
    loaded: list[FakeBackend] = []
    loader = threading.Thread(
        target=lambda: loaded.append(FakeBackend(ModelSpec(source=f"fake://dim=5,gate={gate}")))
    )
    loader.start()
    loader.join(timeout=1.0)
    assert loader.is_alive() and not loaded  # still waiting for the file
    gate.touch()
    loader.join(timeout=30)
    assert not loader.is_alive() and loaded[0].space.dim == 5


@pytest.mark.parametrize(
    "source",
    [
        *("fake://dim=0", "fake://size=3", "fake://dim=x", "fake://delay_ms=-1", "tiny://clip"),
        "fake://gate=",
    ],
)
def test_bad_sources_are_refused_clearly(source: str) -> None:
    with pytest.raises(ModelLoadError, match="fake"):
        FakeBackend.check_source(ModelSpec(source=source))
    with pytest.raises(ModelLoadError, match="fake"):
        FakeBackend(ModelSpec(source=source))


def test_a_colour_word_retrieves_the_image_of_that_colour(fake: FakeBackend) -> None:
    images = fake.embed_images([RED, BLUE])
    red_query, blue_query = fake.embed_texts(["red", "blue"])
    assert np.argmax(images @ red_query) == 0
    assert np.argmax(images @ blue_query) == 1


def test_captions_name_the_dominant_colours(fake: FakeBackend) -> None:
    mixed = half_and_half((230, 20, 20), (250, 250, 250))
    assert fake.caption([CaptionItem(image=im) for im in (RED, BLUE, mixed)]) == [
        "a red image",
        "a blue image",
        "a red and white image",
    ]
    prompted = [CaptionItem(image=RED, prompt="a photo of"), CaptionItem(image=BLUE, prompt="  ")]
    assert fake.caption(prompted) == ["a photo of a red image", "a blue image"]
    assert set(dominant_colours(mixed)) == {"red", "white"}


def test_answers_follow_simple_rules(fake: FakeBackend) -> None:
    questions = ["What color is it?", "Is it red?", "is it blue?", "how many cats?"]
    answers = fake.answer([VqaItem(image=RED, question=q) for q in questions])
    assert [a.text for a in answers] == ["red", "yes", "no", "1"]
    assert all(a.score == 1.0 for a in answers)
    with pytest.raises(ValidationError, match="question"):
        VqaItem(image=RED, question="")


def test_the_fail_marker_fails_every_method_that_takes_text(fake: FakeBackend) -> None:
    with pytest.raises(ValueError, match="on purpose"):
        fake.embed_texts(["fine", f"bad {FAIL_MARKER}"])
    with pytest.raises(ValueError, match="on purpose"):
        fake.caption([CaptionItem(image=RED, prompt=FAIL_MARKER)])
    with pytest.raises(ValueError, match="on purpose"):
        fake.answer([VqaItem(image=RED, question=f"is it {FAIL_MARKER}?")])
    assert fake.caption([CaptionItem(image=RED, prompt="fake fail")]) == ["fake fail a red image"]
