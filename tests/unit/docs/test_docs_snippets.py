"""Every YAML and TOML snippet in README.md, docs/ and the plugin READMEs is checked.

A snippet is one of:

* a copy of a shipped file, named by a first-line comment (``# workflows/describe.yaml``,
  relative to the plugin for a plugin's README, else to the repository): it must say what the
  file says (a Kubernetes manifest, e.g. deployments/kuberay/podmonitor.yaml, is then checked
  by its own test);
* a workflow (it has ``steps:``): it must load and pass every static check, with the steps of
  the plugin whose README it is in;
* an agent (it has ``model:`` and ``name:``): it must pass the agent checks against the shipped
  workflows and ``deployments/tiny.yaml``;
* a piece of an app config (only app-config keys at the top): it must validate;
* TOML: it must parse;
* a file of the plugin guide's example package (``# file: mmserve-notes/...``, docs/plugins.md):
  built, installed and run by tests/unit/test_docs_plugin_guide.py instead.

Anything else fails, so that a new kind of snippet gets a check before it ships (a README
workflow that was not valid YAML shipped once).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmserve.agents import check_agent_text
from mmserve.config import AppConfig
from mmserve.workflow import load_workflow_text, load_workflows

ROOT = Path(__file__).resolve().parents[3]
DOCS = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "plugins").glob("*/README.md")]
)
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_FILE_COMMENT = re.compile(r"^#\s*(\S+\.(?:ya?ml|toml))\s*$")
#: A file of the plugin guide's package (checked by building and running that package).
GUIDE_FILE = re.compile(r"^#\s*file:\s*(\S+)\s*$")


def _snippets(language: str) -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            if match.group(1) == language:
                line = text[: match.start()].count("\n") + 1
                found.append((f"{doc.relative_to(ROOT)}:{line}", match.group(2)))
    return found


YAML_SNIPPETS = _snippets("yaml")
TOML_SNIPPETS = _snippets("toml")


def _plugin_root(where: str) -> Path | None:
    parts = Path(where.partition(":")[0]).parts
    return ROOT / parts[0] / parts[1] if parts[0] == "plugins" else None


def _check_with_plugin(text: str, plugin: Path, kind: str) -> None:
    """Check a workflow or app config in a fresh interpreter that has imported the plugin's
    entry points (the package is not installed in the test environment)."""
    entry_points = tomllib.loads((plugin / "pyproject.toml").read_text(encoding="utf-8"))
    modules = entry_points["project"]["entry-points"]["mmserve.plugins"].values()
    check = {
        "workflow": "load_workflow_text(text, file='snippet')",
        "config": "AppConfig.from_dict(yaml.safe_load(text), source='snippet')",
    }[kind]
    program = (
        "import importlib, sys, yaml\n"
        "from mmserve.config import AppConfig\n"
        "from mmserve.workflow import load_workflow_text\n"
        f"for module in {sorted(modules)!r}:\n"
        "    importlib.import_module(module)\n"
        "text = sys.stdin.read()\n"
        f"{check}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(plugin / "src")}
    result = subprocess.run(
        [sys.executable, "-c", program],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr


def test_the_docs_have_snippets() -> None:
    assert len(YAML_SNIPPETS) >= 6
    assert any(where.startswith("plugins/") for where, _ in YAML_SNIPPETS)


@pytest.mark.parametrize(("where", "text"), YAML_SNIPPETS, ids=[w for w, _ in YAML_SNIPPETS])
def test_yaml_snippet_is_valid(where: str, text: str) -> None:
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        pytest.fail(f"{where}: not valid YAML: {exc}")
    plugin = _plugin_root(where)
    first_line = text.splitlines()[0].strip()
    if GUIDE_FILE.match(first_line) and where.startswith("docs/plugins.md"):
        return  # built, installed and run by tests/unit/test_docs_plugin_guide.py
    named = _FILE_COMMENT.match(first_line)
    if named is not None:
        candidates = [base / named.group(1) for base in (plugin, ROOT) if base is not None]
        file = next((c for c in candidates if c.is_file()), candidates[-1])
        assert file.is_file(), f"{where}: names {named.group(1)}, which does not exist"
        assert data == yaml.safe_load(file.read_text(encoding="utf-8")), (
            f"{where}: differs from {named.group(1)}"
        )
        if isinstance(data, dict) and {"apiVersion", "kind"} <= set(data):
            return  # a shipped Kubernetes manifest, checked by its own test
    assert isinstance(data, dict), f"{where}: a snippet is a mapping"
    if "steps" in data:
        if plugin is None:  # it may use the shipped workflows as steps (`workflow:NAME`)
            shipped = load_workflows([ROOT / "workflows"])
            load_workflow_text(text, file=where, workflows=shipped)
        else:
            _check_with_plugin(text, plugin, "workflow")
        return
    if {"name", "model"} <= set(data) and plugin is None:
        config = AppConfig.load(ROOT / "deployments" / "tiny.yaml")
        workflows = load_workflows(config.workflow_paths())
        spec, issues = check_agent_text(text, file=where, workflows=workflows, config=config)
        assert spec is not None, "\n".join(str(issue) for issue in issues)
        return
    config_keys = set(AppConfig.model_fields) - {"base_dir"}
    unknown = set(data) - config_keys
    assert not unknown, f"{where}: neither a workflow nor app config (keys {sorted(unknown)})"
    if plugin is None:
        AppConfig.from_dict(data, base_dir=ROOT / "deployments", source=where)
    else:
        _check_with_plugin(text, plugin, "config")


@pytest.mark.parametrize(("where", "text"), TOML_SNIPPETS, ids=[w for w, _ in TOML_SNIPPETS])
def test_toml_snippet_parses(where: str, text: str) -> None:
    tomllib.loads(text)
