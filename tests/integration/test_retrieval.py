"""Retrieval end to end in process: `mmserve index` commands, then the chained workflows.

Models are the weight-free ``fake`` backend (captions and answers name image colours, text
and image vectors share one space), the store is the real LanceDB store in a temp folder.
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

from mmserve.cli.index import index_app
from mmserve.config import AppConfig
from mmserve.local.mode import LocalApp

pytestmark = pytest.mark.integration

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
COLOURS = {"red": (220, 30, 30), "green": (40, 170, 60), "blue": (30, 60, 220)}


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    fake = {"backend": "fake", "source": "fake://dim=64"}
    config = {
        "models": {
            "image_encoder": fake,
            "text_encoder": fake,
            "captioner": fake,
            "vqa": fake,
        },
        "store": {"kind": "lancedb", "path": "store"},
        "workflows": [str(WORKFLOWS)],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for name, rgb in COLOURS.items():
        Image.new("RGB", (24, 24), rgb).save(folder / f"{name}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (folder / "readme.md").write_text("not an image")
    return folder


@pytest.fixture
def texts(tmp_path: Path) -> Path:
    path = tmp_path / "captions.jsonl"
    lines = [
        {"text": "a red apple on a table", "id": "apple"},
        {"text": "green grass in a field", "id": "grass"},
        {"text": "a blue sky over the sea", "id": "sky"},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(index_app, list(args))
    return result


def _run(config_file: Path, workflow: str, inputs: dict[str, Any]) -> dict[str, Any]:
    app = LocalApp(AppConfig.load(config_file))
    result = asyncio.run(app.run(app.workflow(str(WORKFLOWS / f"{workflow}.yaml")), inputs))
    dumped: dict[str, Any] = result.model_dump(mode="json")
    return dumped


def test_index_add_reports_bad_files_and_is_idempotent(config_file: Path, images: Path) -> None:
    first = _cli("add", "images", str(images), "--config", str(config_file), "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert (report["inserted"], report["count"]) == (3, 3)
    skipped = {Path(s["where"]).name for s in report["skipped"]}
    assert skipped == {"broken.jpg", "readme.md"}
    assert "broken.jpg" in first.stderr and "readme.md" in first.stderr
    again = _cli("add", "images", str(images), "--config", str(config_file), "--json")
    assert json.loads(again.stdout)["inserted"] == 0
    assert json.loads(again.stdout)["count"] == 3


def test_search_list_drop(config_file: Path, images: Path, texts: Path) -> None:
    assert _cli("add", "images", str(images), "-c", str(config_file)).exit_code == 0
    assert _cli("add", "captions", str(texts), "-c", str(config_file)).exit_code == 0

    listed = json.loads(_cli("list", "--json", "-c", str(config_file)).stdout)["collections"]
    assert [(c["name"], c["modality"], c["count"]) for c in listed] == [
        ("captions", "text", 3),
        ("images", "image", 3),
    ]
    assert listed[0]["space"] == {"backend": "fake", "model_id": "fake://dim=64", "dim": 64}

    by_text = _cli(
        "search", "images", "--text", "blue", "--top-k", "2", "--json", "-c", str(config_file)
    )
    assert by_text.exit_code == 0, by_text.output
    matches = json.loads(by_text.stdout)["matches"]
    assert len(matches) == 2
    assert Path(matches[0]["payload"]["metadata"]["source"]).name == "blue.png"
    assert matches[0]["score"] >= matches[1]["score"]

    by_image = _cli(
        "search",
        "captions",
        "--image",
        f"@{images / 'green.png'}",
        "--json",
        "-c",
        str(config_file),
    )
    assert json.loads(by_image.stdout)["matches"][0]["id"] == "grass"

    human = _cli("search", "captions", "--text", "red", "-c", str(config_file))
    assert "a red apple on a table" in human.stdout.splitlines()[0]

    dropped = _cli("drop", "captions", "-c", str(config_file))
    assert dropped.exit_code == 0 and "3 items" in dropped.stdout
    gone = _cli("search", "captions", "--text", "red", "-c", str(config_file))
    assert gone.exit_code == 1
    assert "unknown collection 'captions'" in gone.stderr and "images" in gone.stderr


def test_search_usage_errors(config_file: Path) -> None:
    both = _cli("search", "x", "--text", "a", "--image", "@b.png", "-c", str(config_file))
    assert both.exit_code == 2 and "exactly one" in both.stderr
    missing = _cli("add", "x", "/no/such/folder", "-c", str(config_file))
    assert missing.exit_code == 1 and "no such file or folder" in missing.stderr


def test_caption_then_retrieve(config_file: Path, images: Path, texts: Path) -> None:
    assert _cli("add", "captions", str(texts), "-c", str(config_file)).exit_code == 0
    out = _run(config_file, "caption_then_retrieve", {"image": images / "red.png", "top_k": 2})
    outputs = out["outputs"]
    assert "red" in outputs["caption"]
    assert outputs["matches"][0]["id"] == "apple"
    assert outputs["matches"][0]["payload"]["text"] == "a red apple on a table"
    assert [entry["step"] for entry in out["trace"]] == ["caption", "search"]


def test_retrieve_then_answer_returns_the_image(config_file: Path, images: Path) -> None:
    assert _cli("add", "images", str(images), "-c", str(config_file)).exit_code == 0
    out = _run(config_file, "retrieve_then_answer", {"question": "what colour is the green thing?"})
    outputs = out["outputs"]
    assert outputs["answer"] == "green"
    assert Path(outputs["metadata"]["source"]).name == "green.png"
    returned = Image.open(io.BytesIO(base64.b64decode(outputs["image"])))
    assert returned.convert("RGB").getpixel((0, 0)) == COLOURS["green"]


def test_search_images_by_text_and_by_image(config_file: Path, images: Path) -> None:
    assert _cli("add", "images", str(images), "-c", str(config_file)).exit_code == 0
    by_text = _run(config_file, "search_images", {"text": "blue", "top_k": 1})
    [match] = by_text["outputs"]["matches"]
    assert Path(match["payload"]["metadata"]["source"]).name == "blue.png"
    query = Image.new("RGB", (10, 10), COLOURS["red"])
    by_image = _run(config_file, "search_images", {"image": query, "top_k": 1})
    assert (
        Path(by_image["outputs"]["matches"][0]["payload"]["metadata"]["source"]).name == "red.png"
    )


def test_a_workflow_indexes_then_retrieves(config_file: Path, tmp_path: Path) -> None:
    workflow = tmp_path / "remember.yaml"
    workflow.write_text(
        """
name: remember
inputs:
  image: {type: image}
  question: {type: string}
steps:
  add:
    uses: index
    with:
      collection: album
      image: ${inputs.image}
      metadata: {origin: upload}
  search:
    uses: retrieve
    with:
      collection: ${add.collection}
      query: ${inputs.question}
      top_k: 1
outputs:
  ids: ${add.ids}
  count: ${add.count}
  found: ${search.matches[0].id}
  metadata: ${search.matches[0].payload.metadata}
"""
    )
    app = LocalApp(AppConfig.load(config_file))
    spec = app.workflow(str(workflow))
    image = Image.new("RGB", (16, 16), COLOURS["red"])
    outputs = asyncio.run(app.run(spec, {"image": image, "question": "red"})).outputs
    assert outputs["count"] == 1
    assert outputs["found"] == outputs["ids"][0]
    assert outputs["metadata"] == {"origin": "upload"}
    again = asyncio.run(app.run(spec, {"image": image, "question": "red"})).outputs
    assert again["count"] == 1  # the same image again: same id, no duplicate
