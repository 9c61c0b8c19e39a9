"""`mmserve index add|search|list|drop` and a shipped retrieval workflow (`mmserve run`), run
as the user runs them (subprocesses), on `store: {kind: milvus, path: ./milvus.db}` (fake
encoders) with the mmserve-milvus package installed for real (pip --target, found through its
entry point).
Each command is its own process: Milvus Lite is opened by one process at a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from milvus_plugin import install_plugin

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COLOURS = {"red": (220, 30, 30), "green": (40, 170, 60), "blue": (30, 60, 220)}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_plugin(tmp_path_factory)


def _mmserve(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-m", "mmserve", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )


def _json(site: Path, *args: str) -> Any:
    result = _mmserve(site, *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_cli_and_a_retrieval_workflow_on_milvus_lite(site: Path, tmp_path: Path) -> None:
    # the weight-free fake encoders: what runs here is the store and the CLI, and a process
    # that loads a tiny CLIP imports torch (seconds of CPU in each of these commands)
    fake = {"backend": "fake", "source": "fake://"}
    config = {
        "models": {"image_encoder": fake, "text_encoder": fake},
        "store": {"kind": "milvus", "path": "./milvus.db", "options": {"index_type": "hnsw"}},
        "workflows": [],
    }
    cfg = tmp_path / "app.yaml"
    cfg.write_text(yaml.safe_dump(config))
    images = tmp_path / "images"
    images.mkdir()
    for name, rgb in COLOURS.items():
        Image.new("RGB", (40, 40), rgb).save(images / f"{name}.png")

    listing = _json(site, "plugins", "--json")
    [milvus] = [p for p in listing["plugins"] if (p["kind"], p["name"]) == ("store", "milvus")]
    assert milvus["origin"] == "mmserve-milvus 0.1.0"

    first = _json(site, "index", "add", "images", str(images), "-c", str(cfg), "--json")
    again = _json(site, "index", "add", "images", str(images), "-c", str(cfg), "--json")
    assert (first["inserted"], again["inserted"], again["already_present"]) == (3, 0, 3)
    assert (tmp_path / "milvus.db").is_dir() and (tmp_path / "milvus-blobs" / "images").is_dir()

    [collection] = _json(site, "index", "list", "--json", "-c", str(cfg))["collections"]
    assert (collection["name"], collection["modality"], collection["count"]) == (
        "images",
        "image",
        3,
    )
    assert collection["space"]["model_id"] == "fake://"

    search = ["index", "search", "images", "--text", "a red square", "-k", "3", "--json"]
    matches = _json(site, *search, "-c", str(cfg))["matches"]
    assert len(matches) == 3
    scores = [m["score"] for m in matches]
    assert scores == sorted(scores, reverse=True) and -1.0 <= scores[-1] <= scores[0] <= 1.0
    assert all(m["payload"]["image"] for m in matches)
    assert {Path(m["payload"]["metadata"]["source"]).name for m in matches} == {
        f"{name}.png" for name in COLOURS
    }

    flow = str(ROOT / "workflows" / "search_images.yaml")
    run = _json(site, "run", flow, "-c", str(cfg), "--input", "text=a blue boat")
    found = run["outputs"]["matches"]
    assert {m["id"] for m in found} == {m["id"] for m in matches}
    assert all(m["payload"]["image"] for m in found)  # the indexed images come back

    dropped = _mmserve(site, "index", "drop", "images", "-c", str(cfg))
    assert dropped.returncode == 0 and "dropped images (3 items)" in dropped.stdout
    assert _json(site, "index", "list", "--json", "-c", str(cfg)) == {"collections": []}
    assert not (tmp_path / "milvus-blobs" / "images").exists()
    missing = _mmserve(site, "index", "search", "images", "--text", "x", "-c", str(cfg))
    assert missing.returncode != 0
    assert "unknown collection 'images'" in missing.stderr
    assert "Traceback" not in missing.stderr
