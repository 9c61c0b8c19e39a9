"""Image outputs: marked in the output schema, decoded by it, written as PNG files."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mmserve.client.outputs import decode_outputs, write_images
from mmserve.errors import ServingError
from mmserve.media import ImageValue
from mmserve.workflow.language.definition import Workflow
from mmserve.workflow.language.spec import WorkflowSpec

pytestmark = pytest.mark.unit


def _png_b64(color: str, size: tuple[int, int] = (4, 3)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _schema() -> dict[str, Any]:
    spec = WorkflowSpec.model_validate(
        {
            "name": "w",
            "steps": {"s": {"uses": "caption", "with": {}}},
            "outputs": {"image": "x", "images": "y", "maybe": "z", "text": "t"},
        }
    )
    types = {"image": ImageValue, "images": list[ImageValue], "maybe": ImageValue | None}
    return Workflow(spec, output_types={**types, "text": str}).output_schema()


def test_image_outputs_are_marked_as_base64_png_in_the_output_schema() -> None:
    properties = _schema()["properties"]
    for schema in (properties["image"], properties["images"]["items"]):
        assert schema["contentEncoding"] == "base64"
        assert schema["contentMediaType"] == "image/png"
    assert properties["text"] == {"title": "Text", "type": "string"}


def test_decode_outputs_turns_exactly_the_marked_values_into_images() -> None:
    red, blue = _png_b64("red"), _png_b64("blue", (2, 5))
    outputs = {"image": red, "images": [red, blue], "maybe": None, "text": red}
    decoded = decode_outputs(outputs, _schema())
    assert isinstance(decoded["image"], Image.Image)
    assert decoded["image"].size == (4, 3)
    assert decoded["image"].getpixel((0, 0)) == (255, 0, 0)
    assert [image.size for image in decoded["images"]] == [(4, 3), (2, 5)]
    assert decoded["maybe"] is None
    assert decoded["text"] == red  # a string output stays a string, even if it looks like one


def test_decode_outputs_reports_a_corrupt_image_clearly() -> None:
    with pytest.raises(ServingError, match="'image' is not a base64 PNG"):
        decode_outputs({"image": "bm90IGEgcG5n"}, _schema())


def test_write_images_saves_pngs_and_returns_their_paths(tmp_path: Path) -> None:
    red = Image.new("RGB", (4, 3), "red")
    outputs = {"image": red, "images": [red, red], "score": 0.5}
    written = write_images(outputs, tmp_path / "out")
    assert written["image"] == str(tmp_path / "out" / "image.png")
    assert written["images"] == [str(tmp_path / "out" / f"images-{i}.png") for i in (0, 1)]
    assert written["score"] == 0.5
    with Image.open(written["image"]) as image:
        assert image.format == "PNG"
        assert image.size == (4, 3)
