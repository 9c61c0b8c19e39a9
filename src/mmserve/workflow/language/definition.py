"""A loaded, checked workflow: its spec, its DAG and the JSON Schemas of its inputs/outputs.

``uses: workflow:NAME`` sees a loaded workflow as a step plugin (:func:`workflow_step_class`):
its ``Inputs`` are the workflow's inputs (so ``with:`` is type-checked like any step's) and its
``Outputs`` the workflow's outputs (so ``${step.output}`` is typed). The engine runs it as a
nested run of the workflow (:class:`mmserve.workflow.run.engine.Engine`), not through ``run``.
"""

from __future__ import annotations

import graphlib
from pathlib import Path
from typing import Any, ClassVar, Optional

from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model

from mmserve.media import ImageValue
from mmserve.registry import Registry
from mmserve.workflow.language.references import ReferenceSyntaxError, parse_template, walk_strings
from mmserve.workflow.language.spec import InputSpec, WorkflowSpec
from mmserve.workflow.language.typecheck import input_type

_IMAGE_SCHEMA: dict[str, Any] = TypeAdapter(ImageValue).json_schema()
_JSON_TYPES = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "array": "array",
    "object": "object",
}


def input_json_schema(spec: InputSpec) -> dict[str, Any]:
    """The JSON Schema of one declared input."""
    image = spec.type == "image"
    schema: dict[str, Any] = dict(_IMAGE_SCHEMA) if image else {"type": _JSON_TYPES[spec.type]}
    if spec.type == "array" and spec.items is not None:
        schema["items"] = input_json_schema(spec.items)
    if spec.description:
        schema["description"] = spec.description
    if not spec.required:
        schema["default"] = spec.default
    bounds = {
        "minimum": spec.minimum,
        "maximum": spec.maximum,
        "enum": spec.enum,
        ("minLength" if spec.type == "string" else "minItems"): spec.min_length,
        ("maxLength" if spec.type == "string" else "maxItems"): spec.max_length,
    }
    schema.update({k: v for k, v in bounds.items() if v is not None})
    if spec.type == "integer":  # YAML bounds are floats; JSON Schema readers prefer ints
        for key in ("minimum", "maximum"):
            if key in schema and float(schema[key]).is_integer():
                schema[key] = int(schema[key])
    return schema


def _schema_type(tp: Any) -> Any:
    """``tp`` when pydantic can describe it in JSON Schema, else ``Any`` (e.g. numpy arrays)."""
    try:
        TypeAdapter(tp, config=ConfigDict(arbitrary_types_allowed=True)).json_schema(
            mode="serialization"
        )
    except Exception:
        try:
            TypeAdapter(tp).json_schema(mode="serialization")
        except Exception:
            return Any
    return tp


def step_dependencies(spec: WorkflowSpec) -> dict[str, frozenset[str]]:
    """Step id -> the ids of the steps its ``with:`` values reference."""
    result: dict[str, frozenset[str]] = {}
    for step_id, step in spec.steps.items():
        roots: set[str] = set()
        for _, text in walk_strings([step.with_, step.for_each, step.when]):
            if "${" not in text:
                continue
            try:
                roots.update(ref.root for ref in parse_template(text).references)
            except ReferenceSyntaxError:  # reported by the checks; nothing to depend on
                continue
        result[step_id] = frozenset(roots & spec.steps.keys())
    return result


class Workflow:
    """A workflow that passed every static check; run it with :class:`~mmserve.workflow.Engine`."""

    def __init__(
        self,
        spec: WorkflowSpec,
        *,
        source: Path | None = None,
        output_types: dict[str, Any] | None = None,
        subworkflows: dict[str, Workflow] | None = None,
        deterministic: bool = False,
    ) -> None:
        self.spec = spec
        self.source = source
        #: step id -> the workflow it runs (``uses: workflow:NAME``)
        self.subworkflows: dict[str, Workflow] = dict(subworkflows or {})
        #: every step is deterministic (a ``cache: true`` on this workflow as a step is valid)
        self.deterministic = deterministic
        #: step id -> the step ids whose outputs it references
        self.dependencies: dict[str, frozenset[str]] = step_dependencies(spec)
        self.output_types: dict[str, Any] = dict(output_types or {})
        # fails loudly on a cycle; the loader has already reported cycles with positions
        sorter = graphlib.TopologicalSorter(self.dependencies)
        self.order: tuple[str, ...] = tuple(sorter.static_order())

    def step_class(self, step_id: str, registry: Registry) -> Any:
        """The plugin class of a step (a :class:`WorkflowStep` for ``uses: workflow:``)."""
        sub = self.subworkflows.get(step_id)
        if sub is not None:
            return workflow_step_class(sub)
        return registry.get("step", self.spec.steps[step_id].uses)

    def side_effect_steps(self, registry: Registry) -> list[str]:
        """The ids of the steps whose plugin declares ``side_effects = True`` (a ``uses:
        workflow:`` step has them when one of that workflow's steps has)."""
        unsafe = []
        for step_id in self.spec.steps:
            sub = self.subworkflows.get(step_id)
            if sub is not None:
                if sub.side_effect_steps(registry):
                    unsafe.append(step_id)
            elif getattr(self.step_class(step_id, registry), "side_effects", False) is True:
                unsafe.append(step_id)
        return unsafe

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def description(self) -> str:
        return self.spec.description

    def input_schema(self) -> dict[str, Any]:
        """JSON Schema of the ``inputs`` object a run takes (images as base64 strings)."""
        return {
            "type": "object",
            "properties": {n: input_json_schema(s) for n, s in self.spec.inputs.items()},
            "required": [n for n, s in self.spec.inputs.items() if s.required],
            "additionalProperties": False,
        }

    def output_schema(self) -> dict[str, Any]:
        """JSON Schema of the ``outputs`` object a run returns (as serialised to JSON)."""
        fields: dict[str, Any] = {
            name: (_schema_type(self.output_types.get(name, Any)), ...)
            for name in self.spec.outputs
        }
        model = create_model(  # type: ignore[call-overload]
            f"{self.name}_outputs", __config__=ConfigDict(arbitrary_types_allowed=True), **fields
        )
        schema: dict[str, Any] = model.model_json_schema(mode="serialization")
        schema.pop("title", None)
        return schema

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, steps={list(self.spec.steps)}, source={self.source})"


_STEP_CONFIG = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class WorkflowStep:
    """The base of the step classes made for workflows (see :func:`workflow_step_class`)."""

    workflow: ClassVar[Workflow]
    Inputs: ClassVar[type[BaseModel]]
    Outputs: ClassVar[type[BaseModel]]
    deterministic: ClassVar[bool] = False

    async def run(self, inputs: Any, ctx: Any) -> BaseModel:  # pragma: no cover - see engine
        raise NotImplementedError("the engine runs a workflow step as a nested run")


def workflow_step_class(workflow: Workflow) -> type[WorkflowStep]:
    """The step class of ``workflow`` (made once per workflow object)."""
    made = workflow.__dict__.get("_step_class")
    if made is not None:
        return made  # type: ignore[no-any-return]
    inputs: dict[str, Any] = {
        name: (input_type(spec), ... if spec.required else None)
        for name, spec in workflow.spec.inputs.items()
    }
    outputs: dict[str, Any] = {
        name: (Optional[workflow.output_types.get(name, Any)], None)  # noqa: UP045
        for name in workflow.spec.outputs
    }
    cls = type(
        f"Workflow_{workflow.name}",
        (WorkflowStep,),
        {
            "__doc__": workflow.description or f"The workflow {workflow.name!r}.",
            "workflow": workflow,
            "deterministic": workflow.deterministic,
            "Inputs": create_model(  # type: ignore[call-overload]
                f"{workflow.name}_inputs", __config__=_STEP_CONFIG, **inputs
            ),
            "Outputs": create_model(  # type: ignore[call-overload]
                f"{workflow.name}_outputs", __config__=_STEP_CONFIG, **outputs
            ),
        },
    )
    workflow.__dict__["_step_class"] = cls
    return cls


__all__ = [
    "Workflow",
    "WorkflowStep",
    "input_json_schema",
    "step_dependencies",
    "workflow_step_class",
]
