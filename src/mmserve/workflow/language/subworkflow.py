"""``uses: workflow:NAME``: a loaded workflow seen as a step plugin.

Its ``Inputs`` are the workflow's inputs (so ``with:`` is type-checked like any step's) and its
``Outputs`` the workflow's outputs (so ``${step.output}`` is typed). The engine runs it as a
nested run of the workflow (:class:`mmserve.workflow.run.engine.Engine`), not through ``run``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Optional

from pydantic import BaseModel, ConfigDict, create_model

from mmserve.workflow.language.typecheck import input_type

if TYPE_CHECKING:
    from mmserve.workflow.language.definition import Workflow

_CONFIG = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


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
                f"{workflow.name}_inputs", __config__=_CONFIG, **inputs
            ),
            "Outputs": create_model(  # type: ignore[call-overload]
                f"{workflow.name}_outputs", __config__=_CONFIG, **outputs
            ),
        },
    )
    workflow.__dict__["_step_class"] = cls
    return cls


__all__ = ["WorkflowStep", "workflow_step_class"]
