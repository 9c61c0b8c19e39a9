"""The issue's "done when", offline: `mmserve index add` with the tiny models of the real
architectures (deployments/tiny.yaml's tiny://clip and tiny BLIP), then both chained
workflows in local mode, on the default LanceDB store and on the milvus plugin (Milvus Lite).
Tiny random models say nonsense; what is checked is the plumbing: ids, scores, the answer,
and that the returned image is the indexed one. Every shipped workflow with a `retrieve` step
runs on both stores.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from milvus_plugin import import_plugin
from mmserve.cli.index import index_app
from mmserve.config import AppConfig
from mmserve.local.mode import LocalApp
from mmserve.stores import content_id, image_content_id

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COLOURS = {"red": (220, 30, 30), "green": (40, 170, 60), "blue": (30, 60, 220)}
CAPTIONS = ["a red car on the road", "a green tree in a park", "a blue boat at sea"]


STORES = {"lancedb": "store", "milvus": "milvus.db"}


@pytest.fixture(scope="module", params=sorted(STORES))
def indexed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deployments/tiny.yaml with its store (of each kind) in a temp folder, and
    both indexes."""
    kind = request.param
    if kind == "milvus":
        import_plugin()
    folder = tmp_path_factory.mktemp("tiny")
    config = yaml.safe_load((ROOT / "deployments" / "tiny.yaml").read_text())
    config["store"] = {"kind": kind, "path": str(folder / STORES[kind])}
    config["workflows"] = [str(ROOT / "workflows")]
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    images = folder / "images"
    images.mkdir()
    for name, rgb in COLOURS.items():
        Image.new("RGB", (40, 40), rgb).save(images / f"{name}.png")
    (images / "truncated.png").write_bytes((images / "red.png").read_bytes()[:30])
    texts = folder / "captions.jsonl"
    texts.write_text("\n".join(json.dumps({"text": t, "kind": "caption"}) for t in CAPTIONS))
    runner = CliRunner()
    for collection, source in (("images", images), ("captions", texts)):
        result = runner.invoke(index_app, ["add", collection, str(source), "-c", str(path)])
        assert result.exit_code == 0, result.output
    return path


def _run(config: Path, workflow: str, inputs: dict[str, Any]) -> dict[str, Any]:
    app = LocalApp(AppConfig.load(config))
    dumped: dict[str, Any] = asyncio.run(app.run(workflow, inputs)).model_dump(mode="json")
    json.dumps(dumped)  # what `mmserve run` prints must be JSON
    return dumped


def test_collections_are_in_the_tiny_clip_space(indexed: Path) -> None:
    result = CliRunner().invoke(index_app, ["list", "--json", "-c", str(indexed)])
    collections = {c["name"]: c for c in json.loads(result.stdout)["collections"]}
    assert collections["images"]["count"] == 3  # the truncated file was skipped
    assert collections["captions"]["count"] == 3
    assert collections["images"]["space"] == collections["captions"]["space"]
    assert collections["images"]["space"]["model_id"] == "tiny://clip"


def test_caption_then_retrieve(indexed: Path) -> None:
    image = Image.new("RGB", (40, 40), COLOURS["blue"])
    out = _run(indexed, "caption_then_retrieve", {"image": image, "top_k": 3})
    outputs = out["outputs"]
    assert isinstance(outputs["caption"], str) and outputs["caption"]
    matches = outputs["matches"]
    assert {m["id"] for m in matches} == {content_id(text=t) for t in CAPTIONS}
    assert [m["score"] for m in matches] == sorted((m["score"] for m in matches), reverse=True)
    assert all(m["payload"]["metadata"]["kind"] == "caption" for m in matches)
    assert [t["status"] for t in out["trace"]] == ["ok", "ok"]


def test_retrieve_then_answer_returns_the_indexed_image(indexed: Path) -> None:
    out = _run(indexed, "retrieve_then_answer", {"question": "what colour is the car?"})
    outputs = out["outputs"]
    assert isinstance(outputs["answer"], str)
    returned = Image.open(io.BytesIO(base64.b64decode(outputs["image"]))).convert("RGB")
    assert image_content_id(returned) == outputs["image_id"]
    source = Image.open(outputs["metadata"]["source"]).convert("RGB")
    assert image_content_id(source) == outputs["image_id"]
    assert -1.0 <= outputs["match_score"] <= 1.0


def test_search_images_by_text_and_by_image(indexed: Path) -> None:
    by_text = _run(indexed, "search_images", {"text": "a green tree", "top_k": 3})["outputs"]
    indexed_ids = {image_content_id(Image.new("RGB", (40, 40), rgb)) for rgb in COLOURS.values()}
    assert {m["id"] for m in by_text["matches"]} == indexed_ids
    assert all(m["payload"]["image"] for m in by_text["matches"])
    red = Image.new("RGB", (40, 40), COLOURS["red"])
    by_image = _run(indexed, "search_images", {"image": red, "top_k": 1})["outputs"]
    [match] = by_image["matches"]
    assert match["id"] == image_content_id(red)  # the same image is its own nearest
    assert match["score"] == pytest.approx(1.0, abs=1e-4)


def test_answer_each_answers_about_every_match(indexed: Path) -> None:
    out = _run(indexed, "answer_each", {"question": "what colour is it?", "top_k": 3})
    outputs = out["outputs"]
    assert len(outputs["answers"]) == len(outputs["image_ids"]) == 3
    assert all(isinstance(answer, str) for answer in outputs["answers"])
    scores = outputs["match_scores"]
    assert scores == sorted(scores, reverse=True)
    assert [t["status"] for t in out["trace"]] == ["ok", "ok"]


def test_caption_matches_captions_the_indexed_images(indexed: Path) -> None:
    out = _run(indexed, "caption_matches", {"text": "a red car", "top_k": 2})
    outputs = out["outputs"]
    assert len(outputs["captions"]) == len(outputs["image_ids"]) == 2
    by_id = {image_content_id(Image.new("RGB", (40, 40), rgb)): rgb for rgb in COLOURS.values()}
    first = Image.new("RGB", (40, 40), by_id[outputs["image_ids"][0]])
    alone = _run(indexed, "caption", {"image": first})["outputs"]["caption"]
    assert outputs["captions"][0] == alone
