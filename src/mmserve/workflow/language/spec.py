"""The workflow spec: the pydantic shape of a workflow YAML file.

These models check structure only (keys, scalar types). Everything that needs the registry or
the whole document -- references, step plugins, type compatibility, cycles -- lives in
:mod:`mmserve.workflow.language.checks`, which reports positions in the file.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

InputType = Literal["image", "string", "integer", "number", "boolean", "array", "object"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class InputSpec(_Strict):
    """One workflow input (or the item type of an ``array`` input).

    The short form ``image: image`` means ``image: {type: image}``. An input is required
    unless it declares a ``default`` (``default: null`` makes it optional with value None).
    """

    type: InputType = Field(description="image, string, integer, number, boolean, array, object")
    description: str = ""
    default: Any = None
    minimum: float | None = Field(default=None, description="Smallest allowed number.")
    maximum: float | None = Field(default=None, description="Largest allowed number.")
    min_length: int | None = Field(
        default=None, ge=0, description="Fewest characters (string) or items (array)."
    )
    max_length: int | None = Field(
        default=None, ge=0, description="Most characters (string) or items (array)."
    )
    enum: list[Any] | None = Field(default=None, description="The allowed values.")
    items: InputSpec | None = Field(default=None, description="Item type of an array.")

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"type": data}
        return data

    @property
    def required(self) -> bool:
        return "default" not in self.model_fields_set


class RetrySpec(_Strict):
    """``retry: {attempts: N, backoff_s: S}``: run the step up to N times in all."""

    attempts: int = Field(ge=1, le=20, description="Attempts in all (the first one included).")
    backoff_s: float = Field(
        default=0.5, ge=0, le=60, description="Wait before the 2nd attempt; doubles each time."
    )


#: ``uses: workflow:NAME`` runs another loaded workflow as a step.
WORKFLOW_PREFIX = "workflow:"


class StepSpec(_Strict):
    """One step: which plugin it uses and the values of that plugin's inputs."""

    uses: str = Field(
        description="The registered name of a step plugin, or workflow:NAME for a workflow."
    )
    with_: dict[str, Any] = Field(
        default_factory=dict,
        alias="with",
        description="The plugin's inputs: literals or ${...} references.",
    )
    description: str = ""
    timeout_s: float | None = Field(
        default=None, gt=0, description="Fail the step when it runs longer than this."
    )
    for_each: str | None = Field(
        default=None, description="${ref to a list}: run the step once per item, concurrently."
    )
    as_: str = Field(
        default="item", alias="as", description="The name of the item inside `with` (for_each)."
    )
    concurrency: int | None = Field(
        default=None, ge=1, le=1024, description="for_each: items running at once (16)."
    )
    when: str | None = Field(
        default=None, description="Run the step only when this condition holds."
    )
    retry: RetrySpec | None = Field(
        default=None, description="Retry on failures that may pass (replica gone, timeout, 503)."
    )
    cache: bool = Field(
        default=False, description="Reuse the result for identical inputs (deterministic steps)."
    )

    @property
    def workflow(self) -> str | None:
        """The sub-workflow's name for ``uses: workflow:NAME``."""
        return self.uses.removeprefix(WORKFLOW_PREFIX) if self.is_workflow else None

    @property
    def is_workflow(self) -> bool:
        return self.uses.startswith(WORKFLOW_PREFIX)


class WorkflowSpec(_Strict):
    """A whole workflow file."""

    name: str = Field(description="Unique workflow name (letters, digits, '_', '-', '.').")
    description: str = ""
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    steps: dict[str, StepSpec] = Field(min_length=1)
    outputs: dict[str, Any] = Field(
        default_factory=dict, description="Output name -> ${...} reference (or a template)."
    )


#: The keys each mapping of the file may hold, by what the mapping is (for hints).
KNOWN_KEYS: dict[str, list[str]] = {
    "workflow": list(WorkflowSpec.model_fields),
    "input": [f.alias or name for name, f in InputSpec.model_fields.items()],
    "step": [f.alias or name for name, f in StepSpec.model_fields.items()],
    "retry": list(RetrySpec.model_fields),
}

__all__ = [
    "KNOWN_KEYS",
    "WORKFLOW_PREFIX",
    "InputSpec",
    "InputType",
    "RetrySpec",
    "StepSpec",
    "WorkflowSpec",
]
