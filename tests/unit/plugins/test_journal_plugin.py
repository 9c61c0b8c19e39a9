"""The example step plugin with side effects (plugins/mmserve-journal), installed for real (pip
--target): its step is registered with ``side_effects = True``, a workflow using it is not
repeatable, and each run appends one numbered JSON line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from plugin_site import installed

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
PLUGIN = ROOT / "plugins" / "mmserve-journal"

CHECK_SCRIPT = """
import json, sys
from mmserve.registry import registry
from mmserve.workflow import load_workflow_text

registry.ensure_loaded()
step = registry.get("step", "journal")
workflow = load_workflow_text(sys.stdin.read(), file="README.md")
print(json.dumps({"side_effects": step.side_effects,
                  "unsafe": workflow.side_effect_steps(registry)}))
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return installed(PLUGIN, tmp_path_factory)


def _python(args: list[str], site: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=ROOT,
        timeout=120,
    )


def test_the_step_is_listed_with_its_origin_and_schema(site: Path) -> None:
    result = _python(["-m", "mmserve", "plugins", "--json"], site)
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    journal = next(p for p in listing["plugins"] if p["name"] == "journal")
    assert (journal["kind"], journal["origin"]) == ("step", "mmserve-journal 0.1.0")
    assert set(journal["inputs"]["properties"]) == {"path", "text"}
    assert set(journal["outputs"]["properties"]) == {"line"}
    assert listing["broken"] == []


def test_it_declares_side_effects_so_the_readme_workflow_is_not_repeatable(site: Path) -> None:
    readme = (PLUGIN / "README.md").read_text(encoding="utf-8")
    (workflow,) = re.findall(r"```yaml\n(.*?)```", readme, flags=re.DOTALL)
    result = _python(["-c", CHECK_SCRIPT], site, stdin=workflow)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"side_effects": True, "unsafe": ["log"]}


def test_each_run_appends_one_numbered_line(site: Path, tmp_path: Path) -> None:
    flow = tmp_path / "note.yaml"
    flow.write_text(
        "name: note\n"
        "inputs:\n  path: {type: string}\n  text: {type: string}\n"
        "steps:\n  log:\n    uses: journal\n"
        "    with: {path: '${inputs.path}', text: '${inputs.text}'}\n"
        "outputs:\n  line: ${log.line}\n"
    )
    config = tmp_path / "app.yaml"
    config.write_text("store: {kind: memory}\nworkflows: []\n")
    journal = tmp_path / "logs" / "journal.jsonl"
    lines = []
    for text in ("first note", "second: ünïcode"):
        inputs = ["--input", f"path={journal}", "--input", f"text={text}"]
        run = ["-m", "mmserve", "run", str(flow), "--config", str(config), *inputs]
        result = _python(run, site)
        assert result.returncode == 0, result.stderr
        lines.append(json.loads(result.stdout)["outputs"]["line"])
    assert lines == [1, 2]
    written = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
    assert [entry["text"] for entry in written] == ["first note", "second: ünïcode"]
    assert all(isinstance(entry["at"], float) for entry in written)
    assert written[0]["at"] <= written[1]["at"]
