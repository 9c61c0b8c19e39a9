"""Content ids: stable, distinct per content, equal for equal pixels."""

from __future__ import annotations

import pytest
from PIL import Image

from mmserve.stores import content_id, image_content_id

pytestmark = pytest.mark.unit


def test_text_ids_are_stable_and_distinct() -> None:
    assert content_id(text="a cat") == content_id(text="a cat")
    assert content_id(text="a cat") != content_id(text="a cat ")
    assert len(content_id(text="")) == 32


def test_image_ids_follow_pixels_not_encoding() -> None:
    red = Image.new("RGB", (4, 3), (255, 0, 0))
    assert image_content_id(red) == image_content_id(red.convert("RGBA"))
    assert image_content_id(red) != image_content_id(Image.new("RGB", (3, 4), (255, 0, 0)))
    assert image_content_id(red) != content_id(text="red")


def test_content_id_needs_exactly_one_kind() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        content_id()
