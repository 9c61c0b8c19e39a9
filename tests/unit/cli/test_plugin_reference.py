"""`mmserve plugins NAME` and docs/steps.md: one plugin's fields, from the registry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
MMSERVE = [sys.executable, "-m", "mmserve"]


def _mmserve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MMSERVE, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_the_committed_reference_is_what_the_registry_generates() -> None:
    program = (
        "from mmserve.cli.plugin_reference import markdown\n"
        "from mmserve.registry import registry\n"
        "print(markdown(registry), end='')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    committed = (ROOT / "docs" / "steps.md").read_text(encoding="utf-8")
    assert result.stdout == committed, (
        "docs/steps.md is stale: run `.venv/bin/python -m mmserve.cli.plugin_reference`"
    )


def test_the_reference_documents_every_field_of_the_builtin_steps() -> None:
    text = (ROOT / "docs" / "steps.md").read_text(encoding="utf-8")
    for field in ("`include_images`", "`prompt`", "`labels`", "`matches`", "`payload`"):
        assert field in text
    assert "### `RetrievedMatch` (`mmserve.types`)" in text


def test_plugins_name_prints_a_steps_inputs_and_outputs() -> None:
    result = _mmserve("plugins", "caption")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "step caption  (builtin)"
    inputs = lines.index("inputs (with:):")
    outputs = lines.index("outputs:")
    fields = [line.split()[0] for line in lines[inputs + 1 : outputs]]
    assert fields == ["image", "prompt", "model"]
    assert lines[outputs + 1].split()[:3] == ["text", "str", "required"]


def test_plugins_name_shows_the_public_types_a_step_gives() -> None:
    result = _mmserve("plugins", "retrieve")
    assert result.returncode == 0, result.stderr
    assert "RetrievedMatch (mmserve.types):" in result.stdout
    assert "include_images" in result.stdout


def test_plugins_name_of_a_role_lists_its_methods_and_their_items() -> None:
    result = _mmserve("plugins", "captioner", "--json")
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)["plugins"]
    assert record["kind"] == "role"
    assert set(record["methods"]) == {"caption"}
    text = _mmserve("plugins", "captioner").stdout
    assert "CaptionItem:" in text
    assert "prompt" in text


def test_plugins_with_an_unknown_name_suggests_close_ones() -> None:
    result = _mmserve("plugins", "captoin")
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "no plugin named 'captoin'" in line
    assert "did you mean caption" in line
