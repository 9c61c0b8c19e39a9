"""`mmserve run` of the generation workflows as a user types them (run through the CLI's own
app in the test process, tests/cli_support.py): the tiny diffusion pipelines, PNG files out,
one clear line for bad input. The commands of docs/generation.md are run as written (with the
output folder moved to a temporary one)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cli_support import mmserve

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "deployments" / "tiny.yaml")
DOC = ROOT / "docs" / "generation.md"
WORKFLOW_SNIPPET = re.compile(r"```yaml\n# (workflows/\S+\.yaml)\n(.*?)```", re.S)


def run_ok(*args: str) -> dict[str, Any]:
    result = mmserve(*args)
    assert result.returncode == 0, result.stderr
    output: dict[str, Any] = json.loads(result.stdout)
    return output


def doc_commands() -> list[list[str]]:
    """The `mmserve run` lines of the doc's first bash block."""
    block = re.search(r"```bash\n(.*?)```", DOC.read_text("utf-8"), re.S)
    assert block is not None
    return [shlex.split(line)[1:] for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_shows_documented_commands() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("### Generate and edit images", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    shown = [shlex.split(line)[1:] for line in block.group(1).splitlines() if line.strip()]
    assert shown and all(command in doc_commands() for command in shown)


def test_the_documented_commands_write_pngs_and_same_seed_gives_same_file(
    tmp_path: Path,
) -> None:
    commands = doc_commands()
    assert [command[:2] for command in commands] == [
        ["run", "generate"],
        ["run", "edit"],
        ["run", "generate_and_score"],
        ["run", "caption_then_generate"],
    ]
    written: dict[str, Any] = {}
    for index, command in enumerate(commands):
        folder = tmp_path / f"out{index}"
        args = [str(folder) if arg == "out/" else arg for arg in command]
        written[command[1]] = run_ok(*args)["outputs"]
        assert written[command[1]]["image"] == str(folder / "image.png")
    with Image.open(written["generate"]["image"]) as image:
        assert image.format == "PNG" and image.size == (512, 512)  # the workflow's default
    with Image.open(written["edit"]["image"]) as image:
        assert image.size == (96, 96)  # the input's size (a multiple of 8 already)
    assert isinstance(written["generate_and_score"]["score"], float)
    assert isinstance(written["caption_then_generate"]["caption"], str)
    # the first command again, into another folder: the same seed writes the same bytes
    again = tmp_path / "again"
    args = [str(again) if arg == "out/" else arg for arg in commands[0]]
    run_ok(*args)
    assert (again / "image.png").read_bytes() == Path(written["generate"]["image"]).read_bytes()


def test_requested_size_and_base64_without_an_output_dir() -> None:
    inputs = ["prompt=a blue square", "width=64", "height=40", "seed=3"]
    args = [arg for value in inputs for arg in ("--input", value)]
    output = run_ok("run", "generate", "--config", TINY, *args)
    from mmserve.media import coerce_image

    image = coerce_image(output["outputs"]["image"])
    assert image.size == (64, 40)
    assert output["trace"][0]["uses"] == "generate_image"
    assert output["trace"][0]["batch_size"] == 1


def test_edit_rounds_an_odd_size_down_to_the_multiple(tmp_path: Path) -> None:
    source = tmp_path / "odd.png"
    Image.new("RGB", (70, 45), (200, 30, 30)).save(source)
    output = run_ok(
        "run", "edit", "--config", TINY, "--input", f"image=@{source}",
        "--input", "instruction=make it blue", "--input", "steps=1",
        "--output-dir", str(tmp_path / "out"),
    )  # fmt: skip
    with Image.open(output["outputs"]["image"]) as image:
        assert image.size == (64, 40)


@pytest.mark.parametrize(
    ("workflow", "inputs", "message"),
    [
        ("generate", ["prompt="], "'prompt'"),
        ("generate", ["prompt=   "], "prompt is empty"),
        ("generate", ["prompt=x", "seed=-1"], "'seed'"),
        ("generate", ["prompt=x", "width=60"], "multiples of 8"),
        ("generate", ["prompt=x", "width=4096", "height=4096"], "max_pixels"),
        ("generate", ["prompt=x", "steps=9"], "max_steps"),
        ("edit", ["image=@examples/images/red_circle.png", "instruction= "], "instruction"),
    ],
)
def test_bad_generation_inputs_give_one_clear_line(
    workflow: str, inputs: list[str], message: str
) -> None:
    args = [arg for value in inputs for arg in ("--input", value)]
    result = mmserve("run", workflow, "--config", TINY, *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    # stdout: nothing when the input is refused before the run, else the failed run's report
    # (the error and the trace, as JSON) naming the same mistake
    if result.stdout:
        assert message in json.loads(result.stdout)["error"]["message"]


def test_the_documented_workflows_are_the_shipped_files() -> None:
    snippets = WORKFLOW_SNIPPET.findall(DOC.read_text("utf-8"))
    assert [path for path, _ in snippets] == ["workflows/generate.yaml", "workflows/edit.yaml"]
    for path, text in snippets:
        assert text == (ROOT / path).read_text("utf-8"), path


def test_the_documented_model_entries_are_a_valid_config() -> None:
    import yaml

    from mmserve.config import AppConfig

    blocks = re.findall(r"```yaml\n(models:\n.*?)```", DOC.read_text("utf-8"), re.S)
    assert len(blocks) == 1
    config = AppConfig.from_dict(yaml.safe_load(blocks[0]))
    assert config.role_of("image_generator") == "image_generator"
    assert config.models["image_generator"].max_steps == 8
    assert config.models["image_editor"].backend == "instruct-pix2pix"
