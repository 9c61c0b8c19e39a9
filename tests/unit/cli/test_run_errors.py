"""`mmserve run` (local mode) on bad runs, as a user runs it: every bad input at once, and the
trace of a run whose step failed (issue 17). Fake models, a memory store: no weights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
IMAGE = ROOT / "examples" / "images" / "red_circle.png"

pytestmark = pytest.mark.unit

FAKE_CONFIG = """
models:
  image_encoder: {backend: fake, source: "fake://"}
  text_encoder: {backend: fake, source: "fake://"}
  captioner: {backend: fake, source: "fake://"}
  vqa: {backend: fake, source: "fake://"}
store: {kind: memory}
workflows: [%s]
"""

# the collection's name comes from a step's output, so only running the step finds it missing
FAILS_IN_A_STEP = """
name: search_by_caption
inputs:
  image: {type: image}
steps:
  caption:
    uses: caption
    with:
      image: ${inputs.image}
  search:
    uses: retrieve
    with:
      collection: ${caption.text}
      query: anything
outputs:
  matches: ${search.matches}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "app.yaml"
    path.write_text(FAKE_CONFIG % json.dumps(str(ROOT / "workflows")), encoding="utf-8")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mmserve", "run", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_a_local_run_names_every_bad_input_at_once(config: Path) -> None:
    result = _run(
        "classify", "--config", str(config), "--input", "labels=7", "--input", "colour=red"
    )
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "3 bad inputs" in line
    for name in ("'colour'", "'image'", "'labels'"):
        assert name in line


def test_bad_input_values_given_on_the_command_line_are_named_together(config: Path) -> None:
    result = _run(
        "classify", "--config", str(config), "--input", "image=red", "--input", "labels=a,b"
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "2 bad inputs" in line and "'image'" in line and "'labels'" in line


def test_a_failed_local_run_prints_its_trace(config: Path, tmp_path: Path) -> None:
    flow = tmp_path / "search_by_caption.yaml"
    flow.write_text(FAILS_IN_A_STEP, encoding="utf-8")
    result = _run(str(flow), "--config", str(config), "--input", f"image=@{IMAGE}")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and "Traceback" not in result.stderr
    answer = json.loads(result.stdout)
    assert answer["error"]["code"] == "collection_not_found"
    statuses = {entry["step"]: entry["status"] for entry in answer["trace"]}
    assert statuses == {"caption": "ok", "search": "error"}
    search = next(entry for entry in answer["trace"] if entry["step"] == "search")
    assert "collection" in search["error"]
