"""Request and response bodies of the HTTP API (v1); they make the OpenAPI document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mmserve.workflow import TraceEntry


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. 'invalid_input'.")
    message: str = Field(description="What went wrong and, where known, how to fix it.")
    request_id: str = Field(description="Quote it when reporting a problem.")
    trace: list[TraceEntry] | None = Field(
        default=None,
        description="For a failed run: every step's status (error, cancelled, skipped).",
    )


class ErrorResponse(BaseModel):
    """Every error answer of the API."""

    error: ErrorDetail


class DeploymentHealth(BaseModel):
    status: str = Field(description="Serve's deployment status, e.g. HEALTHY, UPDATING.")
    ready: bool
    replicas: int = Field(description="Replicas running now.")
    models: list[str] = Field(default_factory=list, description="Config models it serves.")
    message: str = ""


class HealthResponse(BaseModel):
    status: Literal["ok", "starting", "unhealthy"]
    ready: bool = Field(description="True when every deployment can serve requests.")
    deployments: dict[str, DeploymentHealth] = Field(default_factory=dict)
    message: str = Field(
        default="",
        description="Set when Serve's controller could not say (it is restarting): the "
        "answer is then its last report.",
    )


class WorkflowInfo(BaseModel):
    name: str
    description: str = ""
    inputs: dict[str, Any] = Field(description="JSON Schema of the workflow's inputs.")
    outputs: dict[str, Any] = Field(description="JSON Schema of the workflow's outputs.")
    repeatable: bool = Field(
        default=True,
        description="Safe to run again after a failure mid-request: no step declares side "
        "effects. The clients repeat only such runs.",
    )
    side_effects: list[str] = Field(
        default_factory=list, description="The ids of the steps that declare side effects."
    )


class WorkflowList(BaseModel):
    workflows: list[WorkflowInfo]


class RunRequest(BaseModel):
    """Inputs of one workflow run; images as base64 text."""

    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(default_factory=dict)


class RunResponse(BaseModel):
    outputs: dict[str, Any]
    trace: list[TraceEntry]
    request_id: str


class PluginRecord(BaseModel):
    kind: str
    name: str
    origin: str
    description: str = ""
    roles: list[str] | None = None
    inputs: dict[str, Any] | None = Field(default=None, description="Steps: input schema.")
    outputs: dict[str, Any] | None = Field(default=None, description="Steps: output schema.")
    methods: dict[str, Any] | None = Field(
        default=None,
        description="Roles: each batched method with its item and result types.",
    )


class BrokenPlugin(BaseModel):
    name: str
    origin: str
    error: str


class PluginList(BaseModel):
    plugins: list[PluginRecord]
    broken: list[BrokenPlugin] = Field(default_factory=list)


__all__ = [
    "BrokenPlugin",
    "DeploymentHealth",
    "ErrorDetail",
    "ErrorResponse",
    "HealthResponse",
    "PluginList",
    "PluginRecord",
    "RunRequest",
    "RunResponse",
    "WorkflowInfo",
    "WorkflowList",
]
