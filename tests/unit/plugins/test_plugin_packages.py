"""Third-party plugins, installed for real (pip --target) and used through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from plugin_site import installed

ROOT = Path(__file__).resolve().parents[3]
MMSERVE = [sys.executable, "-m", "mmserve"]


def _run(args: list[str], site: Path | None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [*MMSERVE, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


@pytest.fixture(scope="module")
def keywords_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin package, installed into its own site folder."""
    return installed(ROOT / "plugins" / "mmserve-keywords", tmp_path_factory)


def test_installed_plugin_is_listed_with_its_origin_and_schema(keywords_site: Path) -> None:
    result = _run(["plugins", "--json"], keywords_site)
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    keywords = next(p for p in listing["plugins"] if p["name"] == "keywords")
    assert keywords["kind"] == "step"
    assert keywords["origin"] == "mmserve-keywords 0.1.0"
    assert set(keywords["inputs"]["properties"]) == {"text", "top_k", "min_length"}
    assert listing["broken"] == []


def test_the_plugin_step_is_usable_in_a_workflow(keywords_site: Path, tmp_path: Path) -> None:
    flow = tmp_path / "tags.yaml"
    flow.write_text(
        "name: tags\n"
        "inputs:\n  text: {type: string}\n"
        "steps:\n  kw:\n    uses: keywords\n    with: {text: '${inputs.text}', top_k: 2}\n"
        "outputs:\n  tags: ${kw.keywords}\n"
    )
    config = tmp_path / "app.yaml"
    config.write_text("store: {kind: memory}\nworkflows: []\n")
    text = "text=A dog chases a red ball; the dog drops the ball near another dog."
    result = _run(["run", str(flow), "--config", str(config), "--input", text], keywords_site)
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["outputs"]["tags"] == ["dog", "ball"]
    assert [entry["step"] for entry in output["trace"]] == ["kw"]


def test_without_the_plugin_the_workflow_names_the_unknown_step() -> None:
    flow = ROOT / "examples" / "tag_image.yaml"
    line = flow.read_text().splitlines().index("    uses: keywords") + 1
    result = _run(["validate", str(flow)], None)
    assert result.returncode == 1
    assert f"tag_image.yaml:{line}:11:" in result.stderr
    assert "'keywords'" in result.stderr
    assert "Traceback" not in result.stderr


def test_with_the_plugin_the_example_workflow_validates(keywords_site: Path) -> None:
    result = _run(["validate", str(ROOT / "examples" / "tag_image.yaml")], keywords_site)
    assert result.returncode == 0, result.stderr


def test_a_broken_plugin_is_reported_by_name_and_the_rest_still_load(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "broken_pkg").mkdir(parents=True)
    (site / "broken_pkg" / "__init__.py").write_text("raise RuntimeError('boom at import')\n")
    dist = site / "broken_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[mmserve.plugins]\nbroken = broken_pkg\n")
    result = _run(["plugins", "--json"], site)
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert listing["broken"] == [
        {"name": "broken", "origin": "broken-pkg 1.0", "error": "RuntimeError: boom at import"}
    ]
    assert "caption" in {p["name"] for p in listing["plugins"]}
    text = _run(["plugins"], site)
    assert "broken broken (broken-pkg 1.0): RuntimeError: boom at import" in text.stderr


_RAW_IMAGE_STEP = '''
from PIL import Image
from mmserve.registry import register_step
from mmserve.workflow.steps.step import Step, StepInputs, StepOutputs


@register_step("raw_pixels")
class RawPixels(Step):
    """Counts pixels of an input typed as a raw PIL image."""

    class Inputs(StepInputs):
        image: Image.Image

    class Outputs(StepOutputs):
        pixels: int

    async def run(self, inputs, ctx):
        return self.Outputs(pixels=inputs.image.width * inputs.image.height)
'''


def test_a_step_without_a_json_schema_is_listed_as_broken_by_the_cli(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "raw_pkg").mkdir(parents=True)
    (site / "raw_pkg" / "__init__.py").write_text(_RAW_IMAGE_STEP)
    dist = site / "raw_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: raw-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[mmserve.plugins]\nraw = raw_pkg\n")
    result = _run(["plugins", "--json"], site)
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    [broken] = listing["broken"]
    assert broken["name"] == "raw_pixels" and broken["origin"] == "raw-pkg 1.0"
    assert broken["error"].startswith("cannot describe the plugin: PydanticInvalidForJsonSchema")
    assert "caption" in {p["name"] for p in listing["plugins"]}
    text = _run(["plugins"], site)
    assert text.returncode == 0 and "broken raw_pixels (raw-pkg 1.0)" in text.stderr


def test_the_listing_keeps_its_columns_with_a_long_origin(keywords_site: Path) -> None:
    result = _run(["plugins"], keywords_site)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    keywords = next(line for line in lines if line.split()[1] == "keywords")
    assert "mmserve-keywords 0.1.0" in keywords
    # every description starts in the same column, however long the origin
    starts = {line.index(line.split("  ")[-1].strip()) for line in lines if "builtin" in line}
    column = keywords.index("Keep the most frequent")
    assert starts == {column}


def test_plugins_name_describes_an_installed_plugin(keywords_site: Path) -> None:
    result = _run(["plugins", "keywords"], keywords_site)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "step keywords  (mmserve-keywords 0.1.0)"
    assert "top_k" in result.stdout
