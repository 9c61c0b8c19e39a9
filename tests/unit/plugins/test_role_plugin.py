"""The example role plugin (plugins/mmserve-colour-tags) installed for real (pip --target):
listed with its role's methods, run locally through the CLI, its source checked by its own
backend before serving, and its README (the role-plugin guide) true to the package."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from plugin_site import installed

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
PLUGIN = ROOT / "plugins" / "mmserve-colour-tags"
README = (PLUGIN / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return installed(PLUGIN, tmp_path_factory)


def _mmserve(args: list[str], site: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-m", "mmserve", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_every_role_is_listed_with_its_methods(site: Path) -> None:
    result = _mmserve(["plugins", "--json"], site)
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    roles = {p["name"]: p for p in listing["plugins"] if p["kind"] == "role"}
    assert set(roles) == {
        *("image_encoder", "text_encoder", "captioner", "vqa"),
        *("image_generator", "image_editor", "llm", "image_tagger"),
    }
    generate = roles["image_generator"]["methods"]["generate"]
    assert generate["item"] == "mmserve.models.roles.images.GenerateItem"
    assert generate["batched_by_key"] is True
    assert roles["captioner"]["methods"]["caption"]["item"] == (
        "mmserve.models.roles.captioner.CaptionItem"
    )
    assert roles["vqa"]["methods"]["answer"]["result"] == "mmserve.models.spec.Answer"
    assert roles["text_encoder"]["methods"]["embed_texts"]["item"] == "str"
    tagger = roles["image_tagger"]
    assert tagger["origin"] == "mmserve-colour-tags 0.1.0"
    assert tagger["methods"]["tag"]["result"] == "list[mmserve_colour_tags.role.Tag]"
    assert tagger["methods"]["fingerprint"]["batched_by_key"] is True
    models = {p["name"]: p for p in listing["plugins"] if p["kind"] == "model"}
    assert models["colour-tagger"]["roles"] == ["image_tagger"]
    assert listing["broken"] == []


def test_the_readme_commands_run_locally(site: Path) -> None:
    (bash,) = _blocks("bash")
    (run_line,) = [line for line in bash.splitlines() if line.startswith("mmserve run")]
    result = _mmserve(run_line.split()[1:], site, cwd=PLUGIN)
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["outputs"]["tags"] == ["white", "red"]
    assert re.fullmatch(r"[0-9a-f]{16}", output["outputs"]["fingerprint"])
    assert [entry["batch_size"] for entry in output["trace"]] == [1, 1]
    listed = _mmserve(["plugins"], site)
    assert "image_tagger" in listed.stdout and "[tag, fingerprint]" in listed.stdout


def test_the_main_readme_points_at_the_same_commands() -> None:
    main = (ROOT / "README.md").read_text(encoding="utf-8")
    section = main.split("### Model roles are plugins too", 1)[1].split("###", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    (guide,) = _blocks("bash")
    # The guide's commands are run by test_the_readme_commands_run_locally.
    assert set(block.splitlines()) <= set(guide.splitlines())


BATCH_KEY_SCRIPT = """
import asyncio, json
from PIL import Image
from mmserve.config import AppConfig
from mmserve.gateway.local import LocalGateway
from mmserve_colour_tags.role import FingerprintItem

gateway = LocalGateway(AppConfig.load("deployment.yaml"))
images = [Image.new("RGB", (40, 30), (40 * i, 200 - 30 * i, 90)) for i in range(4)]
items = [FingerprintItem(image=im, hash_size=s) for im, s in zip(images, [8, 4, 8, 4])]
batch = asyncio.run(gateway.call_batch("image_tagger", "fingerprint", items))
single = [asyncio.run(gateway.call("image_tagger", "fingerprint", i)).value for i in items]
print(json.dumps({"batch": batch.items, "size": batch.batch_size, "single": single}))
"""


def test_items_of_different_batch_keys_never_share_a_local_batch(site: Path) -> None:
    # The backend hashes a batch as one array: a batch mixing hash sizes would raise.
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", BATCH_KEY_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=PLUGIN,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["size"] == 2  # two groups of two, one per hash size
    assert found["batch"] == found["single"]
    assert [len(h) for h in found["batch"]] == [16, 4, 16, 4]


WARMUP_SCRIPT = """
import json, logging
from mmserve.models.spec import ModelSpec
from mmserve.models.loader import load_backend, run_batch
from mmserve.serve.warmup import warm_up, warmup_batches
from mmserve_colour_tags.role import IMAGE_TAGGER

backend = load_backend("colour-tagger", ModelSpec(source="basic"))
seconds = warm_up(backend, [IMAGE_TAGGER], 4, label="t", source="basic", run=run_batch)
batches = [(m, [getattr(i, "hash_size", None) for i in items])
           for m, items in warmup_batches(IMAGE_TAGGER, 4)]
print(json.dumps({"seconds": seconds, "batches": batches}))
"""


def test_the_plugins_own_sample_items_warm_its_backend(site: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", WARMUP_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=PLUGIN,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["seconds"] >= 0
    # each hash size (batch key) warmed in batches of its own, at sizes 1 and 4
    assert found["batches"] == [
        ["fingerprint", [8]],
        ["fingerprint", [8, 8, 8, 8]],
        ["fingerprint", [16]],
        ["fingerprint", [16, 16, 16, 16]],
        ["tag", [None]],
        ["tag", [None, None, None, None]],
    ]


def test_serve_refuses_an_unknown_palette_before_starting_ray(site: Path, tmp_path: Path) -> None:
    config = yaml.safe_load((PLUGIN / "deployment.yaml").read_text())
    config["models"]["image_tagger"]["source"] = "rainbow"
    config["workflows"] = [str(PLUGIN / "workflows")]
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(config))
    result = _mmserve(["serve", "--config", str(path), "--port", "0"], site)
    assert result.returncode != 0
    assert "could not load model 'rainbow'" in result.stderr
    assert "palettes: basic, grey" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_readme_snippets_match_the_package() -> None:
    (deployment, workflow) = _blocks("yaml")
    assert yaml.safe_load(deployment) == yaml.safe_load((PLUGIN / "deployment.yaml").read_text())
    shipped = yaml.safe_load((PLUGIN / "workflows" / "tag_image_colours.yaml").read_text())
    assert yaml.safe_load(workflow)["steps"] == shipped["steps"]
    (toml,) = _blocks("toml")
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())
    assert tomllib.loads(toml)["project"] == {"entry-points": project["project"]["entry-points"]}
    sources = {p.name: p.read_text() for p in (PLUGIN / "src" / "mmserve_colour_tags").glob("*.py")}
    for snippet in _blocks("python"):
        ast.parse(snippet)  # valid Python
    assert 'register_role(\n    "image_tagger"' in sources["role.py"]
    assert "def check_source(cls, spec: ModelSpec) -> None:" in sources["backend.py"]
    assert 'ctx.gateway.call(model, "tag", item)' in sources["steps.py"]
