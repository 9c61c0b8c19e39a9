"""`mmserve run --local` and `mmserve validate` as a user types them, on the tiny models: each
command runs through the CLI's own app in the test process (tests/cli_support.py), and the
console script itself once, as its own process (`mmserve validate`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli_support import mmserve

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "deployments" / "tiny.yaml")
IMAGES = ROOT / "examples" / "images"
#: The console script that `pip install` puts next to the environment's python.
CONSOLE_SCRIPT = str(Path(sys.executable).with_name("mmserve"))


def run_ok(*args: str) -> dict[str, Any]:
    result = mmserve("run", *args, "--config", TINY)
    assert result.returncode == 0, result.stderr
    output: dict[str, Any] = json.loads(result.stdout)
    return output


def test_shipped_workflows_validate() -> None:
    result = subprocess.run(
        [CONSOLE_SCRIPT, "validate", str(ROOT / "workflows")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ")
    assert mmserve("validate", str(ROOT / "workflows")).stdout == result.stdout


def test_caption_prints_a_caption_and_a_trace() -> None:
    output = run_ok("caption", "--local", "--input", f"image=@{IMAGES / 'red_circle.png'}")
    assert isinstance(output["outputs"]["caption"], str)
    (entry,) = output["trace"]
    assert entry["step"] == "caption" and entry["uses"] == "caption"
    assert entry["status"] == "ok" and entry["batch_size"] == 1 and entry["wall_ms"] > 0


def test_answer_and_classify_answer() -> None:
    image = f"image=@{IMAGES / 'blue_square.png'}"
    answer = run_ok("answer", "--input", image, "--input", "question=what colour is it?")
    assert isinstance(answer["outputs"]["answer"], str)
    labels = ["square", "circle", "triangle"]
    classify = run_ok("classify", "--input", image, "--input", f"labels={json.dumps(labels)}")
    scores = classify["outputs"]["scores"]
    assert sorted(s["label"] for s in scores) == sorted(labels)
    assert classify["outputs"]["label"] == scores[0]["label"]
    assert sum(s["score"] for s in scores) == pytest.approx(1.0)
    # the image and the three label prompts each rode in one batch
    assert classify["trace"][0]["batch_size"] == 3


def test_describe_runs_two_steps_from_one_image() -> None:
    output = run_ok("describe", "--input", f"image=@{IMAGES / 'yellow_sun.png'}")
    assert {entry["step"] for entry in output["trace"]} == {"caption", "answer"}
    assert all(entry["status"] == "ok" for entry in output["trace"])


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([], "'image'"),
        (["image=@examples/images/red_circle.png", "colour=red"], "'colour'"),
        (["image=@README.md"], "not an image"),
        (["image=@examples/images/nope.png"], "cannot read"),
        (["image=@examples/images/red_circle.png", "prompt"], "name=value"),
    ],
)
def test_bad_inputs_give_one_clear_line(inputs: list[str], message: str) -> None:
    args = [arg for value in inputs for arg in ("--input", value)]
    result = mmserve("run", "caption", "--config", TINY, *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout == ""


def test_wrong_type_names_the_input() -> None:
    image = f"image=@{IMAGES / 'red_circle.png'}"
    result = mmserve("run", "classify", "--config", TINY, "--input", image, "--input", "labels=7")
    assert result.returncode != 0
    assert "'labels'" in result.stderr and "Traceback" not in result.stderr


def test_a_comma_list_gets_a_one_line_hint_to_write_json() -> None:
    image = f"image=@{IMAGES / 'red_circle.png'}"
    result = mmserve(
        "run", "classify", "--config", TINY, "--input", image, "--input", "labels=circle,square"
    )
    assert result.returncode != 0
    assert """--input 'labels=["circle", "square"]'""" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unknown_workflow_and_config_are_clear() -> None:
    result = mmserve("run", "captoin", "--config", TINY)
    assert result.returncode == 1
    assert "unknown workflow 'captoin'" in result.stderr and "caption" in result.stderr
    result = mmserve("run", "caption", "--config", "deployments/nope.yaml")
    assert result.returncode == 1 and "cannot read config" in result.stderr


def test_no_cache_runs_cached_steps_afresh() -> None:
    image = f"image=@{IMAGES / 'red_circle.png'}"
    output = run_ok(
        "classify_then_answer",
        "--no-cache",
        "--input",
        image,
        "--input",
        "question=what is it?",
        "--input",
        "min_score=0",
    )
    classify, answer = output["trace"]
    assert classify["cached"] is False and answer["status"] == "ok"
    assert isinstance(output["outputs"]["answer"], str)
