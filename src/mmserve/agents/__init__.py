"""Agents: an ``llm`` model that calls workflows as tools (no Ray in this package)."""

from mmserve.agents.definition import LLM_ROLE, Agent, AgentSpec, check_agent_text, load_agents
from mmserve.agents.loop import AgentResult, AgentRun, ToolTrace, mentioned_handles, tool_spec

__all__ = [
    "LLM_ROLE",
    "Agent",
    "AgentResult",
    "AgentRun",
    "AgentSpec",
    "ToolTrace",
    "check_agent_text",
    "load_agents",
    "mentioned_handles",
    "tool_spec",
]
