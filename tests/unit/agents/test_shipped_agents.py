"""The shipped profiles serve the shipped assistant: its llm and the models of every tool."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmserve.agents import load_agents
from mmserve.config import AppConfig
from mmserve.workflow import load_workflows

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
#: The role each tool of the assistant needs a model for.
TOOL_ROLES = {
    "caption": "captioner",
    "answer": "vqa",
    "search_images": "text_encoder",
    "generate": "image_generator",
}


@pytest.mark.parametrize(("profile", "backend"), [("tiny", "fake-llm"), ("local", "causal-lm")])
def test_each_profile_serves_the_assistant_with_every_tool(profile: str, backend: str) -> None:
    config = AppConfig.load(ROOT / "deployments" / f"{profile}.yaml")
    workflows = load_workflows(config.workflow_paths())
    agents = load_agents(config.agent_paths(), workflows=workflows, config=config)
    assistant = agents["assistant"].spec
    assert assistant.tools == list(TOOL_ROLES)  # the design's tools, generate included
    llm = config.models[config.model_for("llm", assistant.model)]
    assert llm.backend == backend
    for role in TOOL_ROLES.values():
        config.model_for(role)  # raises when the profile has no model for a tool's role
    if profile == "local":
        assert llm.source == "Qwen/Qwen2.5-0.5B-Instruct"
