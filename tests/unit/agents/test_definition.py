"""Agents in YAML: loaded and statically checked, every issue at FILE:LINE:COL."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmserve.agents import load_agents
from mmserve.config import AppConfig
from mmserve.errors import AgentValidationError
from mmserve.workflow import load_workflows

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = load_workflows([ROOT / "workflows"])
CONFIG = AppConfig.from_dict(
    {
        "models": {
            "llm": {"backend": "fake-llm", "source": "fake-llm://"},
            "captioner": {"backend": "fake", "source": "fake://"},
        }
    }
)


def load(tmp_path: Path, text: str) -> None:
    (tmp_path / "agent.yaml").write_text(text, encoding="utf-8")
    load_agents([tmp_path], workflows=WORKFLOWS, config=CONFIG)


def issues(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(AgentValidationError) as caught:
        load(tmp_path, text)
    return [str(issue) for issue in caught.value.issues]


def test_the_shipped_assistant_loads_against_the_tiny_config() -> None:
    config = AppConfig.load(ROOT / "deployments" / "tiny.yaml")
    agents = load_agents(config.agent_paths(), workflows=WORKFLOWS, config=config)
    assistant = agents["assistant"].spec
    assert assistant.model == "llm"
    assert set(assistant.tools) <= set(WORKFLOWS)


def test_unknown_tool_and_a_model_that_is_not_an_llm_are_located(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        "name: a\nmodel: captioner\ntools:\n  - caption\n  - paint\n",
    )
    file = tmp_path / "agent.yaml"
    assert found[0].startswith(f"{file}:5:5: tool 'paint' names no loaded workflow")
    assert found[1].startswith(f"{file}:2:8: model 'captioner' serves 'captioner', not 'llm'")


def test_a_missing_model_and_unknown_keys_are_located(tmp_path: Path) -> None:
    file = tmp_path / "agent.yaml"
    assert issues(tmp_path, "name: a\nmodel: gpt\n")[0].startswith(
        f"{file}:2:8: no model named 'gpt' in the app config"
    )
    found = issues(tmp_path, "name: a\ntols: [caption]\n")
    assert any(f.startswith(f"{file}:2:1: unknown key 'tols'") for f in found)
    assert any("model: Field required" in f for f in found)


def test_bad_yaml_and_duplicate_names_are_reported(tmp_path: Path) -> None:
    assert "agent.yaml:3:1: YAML syntax error" in issues(tmp_path, "name: a\nmodel: [llm\n")[0]
    (tmp_path / "b.yaml").write_text("name: a\nmodel: llm\n", encoding="utf-8")
    assert "duplicate agent name 'a'" in issues(tmp_path, "name: a\nmodel: llm\n")[0]
