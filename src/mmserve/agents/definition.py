"""Agents in YAML: what an agent is, and loading agent files with static checks.

An agent names an ``llm`` model of the app config, a system prompt, and the workflows it may
call as tools (see ``agents/assistant.yaml``)::

    name: assistant
    description: Looks at images for you.
    model: llm
    system: You are a helpful assistant that uses tools to look at images.
    tools: [caption, answer]
    max_turns: 6

Every problem of every file is reported at once, each at FILE:LINE:COL: YAML errors, unknown
or missing keys, a tool that names no loaded workflow, a model missing from the config or not
an ``llm``, duplicate agent names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from mmserve.config import AppConfig
from mmserve.errors import AgentValidationError, SourceLocation, WorkflowIssue
from mmserve.workflow import Workflow
from mmserve.workflow.language.loader import workflow_files
from mmserve.workflow.language.yaml_source import YamlDocument, YamlLimits, read_yaml

#: The role an agent's model must serve.
LLM_ROLE = "llm"


class AgentSpec(BaseModel):
    """One agent as written in YAML."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    description: str = ""
    model: str = Field(description="Config name of an `llm` model.")
    system: str = Field(default="", description="The system prompt.")
    tools: list[str] = Field(default_factory=list, description="Workflow names.")
    max_turns: int = Field(default=6, ge=1, le=64, description="Most LLM calls in one run.")


@dataclass(frozen=True)
class Agent:
    """A checked agent and the file it came from."""

    spec: AgentSpec
    source: Path | None = None

    @property
    def name(self) -> str:
        return self.spec.name


def check_agent_text(
    text: str, *, file: str, workflows: Mapping[str, Workflow], config: AppConfig
) -> tuple[AgentSpec | None, list[WorkflowIssue]]:
    """The agent in ``text`` and every issue found (the spec is None when any is found)."""
    doc = read_yaml(text, file=file)
    if doc.issues:
        return None, doc.issues
    if not isinstance(doc.value, dict):
        return None, [WorkflowIssue(doc.location(()), "an agent file must be a mapping")]
    try:
        spec = AgentSpec.model_validate(doc.value)
    except ValidationError as exc:
        return None, [_schema_issue(doc, err) for err in exc.errors()]
    issues = [
        WorkflowIssue(
            doc.location(("tools", index)),
            f"tool {tool!r} names no loaded workflow",
            f"loaded workflows: {', '.join(sorted(workflows)) or '(none)'}",
        )
        for index, tool in enumerate(spec.tools)
        if tool not in workflows
    ]
    model = config.models.get(spec.model)
    if model is None:
        issues.append(
            WorkflowIssue(
                doc.location(("model",)),
                f"no model named {spec.model!r} in the app config",
                f"configured models: {', '.join(sorted(config.models)) or '(none)'}; add an "
                f"'{LLM_ROLE}' model (e.g. backend: fake-llm, source: fake-llm://)",
            )
        )
    elif model.role != LLM_ROLE:
        issues.append(
            WorkflowIssue(
                doc.location(("model",)),
                f"model {spec.model!r} serves {model.role!r}, not {LLM_ROLE!r}",
                "an agent's model must be a language model (role: llm)",
            )
        )
    return (None if issues else spec), issues


def _schema_issue(doc: YamlDocument, err: ErrorDetails) -> WorkflowIssue:
    path = tuple(err["loc"])
    if err["type"] == "extra_forbidden":
        return WorkflowIssue(
            doc.location(path, key=True),
            f"unknown key {path[-1]!r}",
            f"an agent has: {', '.join(AgentSpec.model_fields)}",
        )
    where = ".".join(str(part) for part in path) or "the agent"
    return WorkflowIssue(doc.location(path), f"{where}: {err['msg']}")


def _check_file(
    path: Path, workflows: Mapping[str, Workflow], config: AppConfig
) -> tuple[AgentSpec | None, list[WorkflowIssue]]:
    start = SourceLocation(str(path), 1, 1)
    try:
        if path.stat().st_size > YamlLimits().max_bytes:
            return None, [WorkflowIssue(start, "the file is too large for an agent")]
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, [WorkflowIssue(start, f"the file is not UTF-8 text ({exc.reason})")]
    except OSError as exc:
        return None, [WorkflowIssue(start, f"cannot read the file: {exc.strerror or exc}")]
    return check_agent_text(text, file=str(path), workflows=workflows, config=config)


def load_agents(
    paths: Iterable[str | Path], *, workflows: Mapping[str, Workflow], config: AppConfig
) -> dict[str, Agent]:
    """Every agent in the given files and folders, by name.

    Raises :class:`AgentValidationError` with the issues of all files when any is invalid.
    """
    agents: dict[str, Agent] = {}
    issues: list[WorkflowIssue] = []
    for path in workflow_files(paths):
        spec, found = _check_file(path, workflows, config)
        issues.extend(found)
        if spec is None:
            continue
        if spec.name in agents:
            issues.append(
                WorkflowIssue(
                    SourceLocation(str(path), 1, 1),
                    f"duplicate agent name {spec.name!r}, already defined in "
                    f"{agents[spec.name].source}",
                    "agent names must be unique across the loaded files; rename one",
                )
            )
            continue
        agents[spec.name] = Agent(spec, path)
    if issues:
        raise AgentValidationError(issues)
    return agents


__all__ = ["LLM_ROLE", "Agent", "AgentSpec", "check_agent_text", "load_agents"]
