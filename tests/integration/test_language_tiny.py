"""The workflow language in local mode with the tiny models of deployments/tiny.yaml: a
for_each over 16 images rides in model batches (and equals 16 single runs), the cache, and
the shipped workflows answer_each, caption_matches and classify_then_answer."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from mmserve.config import AppConfig
from mmserve.local.mode import LocalApp
from mmserve.stores import image_content_id

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "examples" / "images"
CAPTION_EACH = """
name: caption_each
inputs:
  images: {type: array, items: {type: image}}
steps:
  captions:
    uses: caption
    for_each: ${inputs.images}
    as: image
    cache: true
    with: {image: "${image}"}
outputs:
  captions: ${captions[*].text}
"""
INDEX_IMAGE = """
name: seed_image
inputs: {image: {type: image}}
steps:
  add: {uses: index, with: {collection: images, image: "${inputs.image}"}}
outputs: {count: "${add.count}"}
"""


def sixteen_images() -> list[Image.Image]:
    return [Image.new("RGB", (32, 32), (i * 15, 255 - i * 15, 90)) for i in range(16)]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> LocalApp:
    """The tiny profile with a private store (the example images indexed) and the shipped
    workflows plus caption_each."""
    folder = tmp_path_factory.mktemp("language")
    (folder / "caption_each.yaml").write_text(CAPTION_EACH)
    data = yaml.safe_load((ROOT / "deployments" / "tiny.yaml").read_text())
    data["store"] = {"kind": "lancedb", "path": str(folder / "store")}
    data["workflows"] = [str(ROOT / "workflows"), str(folder / "caption_each.yaml")]
    (folder / "tiny.yaml").write_text(yaml.safe_dump(data))
    local = LocalApp(AppConfig.load(folder / "tiny.yaml"))
    (folder / "seed.yaml").write_text(INDEX_IMAGE)
    for image in sorted(IMAGES.glob("*.png")):
        asyncio.run(local.run(str(folder / "seed.yaml"), {"image": image.read_bytes()}))
    return local


def run(app: LocalApp, workflow: str, inputs: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = asyncio.run(app.run(workflow, inputs, **kwargs)).model_dump(
        mode="json"
    )
    json.dumps(dumped)
    return dumped


def test_for_each_over_16_images_rides_in_batches_and_equals_single_runs(app: LocalApp) -> None:
    images = sixteen_images()
    result = run(app, "caption_each", {"images": images}, use_cache=False)
    (entry,) = result["trace"]
    assert entry["items"] == 16 and entry["item_status"] == ["ok"] * 16
    # the captioner's batch.max_size is 8 (the default): two batches of 8
    assert entry["batch_size"] == 8
    single = [run(app, "caption", {"image": image})["outputs"]["caption"] for image in images]
    assert result["outputs"]["captions"] == single


def test_cached_for_each_items_come_from_the_cache(app: LocalApp) -> None:
    images = sixteen_images()[:4]
    first = run(app, "caption_each", {"images": images}, use_cache=False)
    again = run(app, "caption_each", {"images": [*images, Image.new("RGB", (8, 8))]})
    assert again["outputs"]["captions"][:4] == first["outputs"]["captions"]
    assert again["trace"][0]["item_status"] == ["cached"] * 4 + ["ok"]
    bypass = run(app, "caption_each", {"images": images}, use_cache=False)
    assert bypass["trace"][0]["item_status"] == ["ok"] * 4


def test_answer_each_answers_for_every_match(app: LocalApp) -> None:
    out = run(app, "answer_each", {"question": "what shape is it?", "top_k": 3}, use_cache=False)
    outputs = out["outputs"]
    assert len(outputs["answers"]) == len(outputs["image_ids"]) == 3
    assert all(isinstance(a, str) for a in outputs["answers"])
    assert out["trace"][1]["items"] == 3 and out["trace"][1]["attempts"] == 1


def test_caption_matches_captions_every_match_through_the_caption_workflow(app: LocalApp) -> None:
    out = run(app, "caption_matches", {"text": "a red circle", "top_k": 2})
    outputs = out["outputs"]
    assert len(outputs["captions"]) == 2 and all(isinstance(c, str) for c in outputs["captions"])
    by_id = {image_content_id(Image.open(p)): p for p in IMAGES.glob("*.png")}
    image = Image.open(by_id[outputs["image_ids"][0]])
    alone = run(app, "caption", {"image": image})["outputs"]["caption"]
    assert outputs["captions"][0] == alone
    assert out["trace"][1]["uses"] == "workflow:caption"


def test_classify_then_answer_answers_only_when_confident(app: LocalApp) -> None:
    image = IMAGES / "red_circle.png"
    inputs = {"image": image.read_bytes(), "question": "what is it?"}
    sure = run(app, "classify_then_answer", {**inputs, "min_score": 0})
    assert isinstance(sure["outputs"]["answer"], str)
    unsure = run(app, "classify_then_answer", {**inputs, "min_score": 1})
    assert unsure["outputs"]["answer"] is None
    assert unsure["outputs"]["label"] == sure["outputs"]["label"]
    assert unsure["trace"][1]["status"] == "skipped"
    assert unsure["trace"][0]["cached"] is True  # same image and labels as the run before
