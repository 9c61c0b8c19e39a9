"""Workflows: the spec, the YAML loader with its static checks, and the engine.

Quick start::

    from mmserve.workflow import Engine, load_workflow
    workflow = load_workflow("workflows/caption_then_retrieve.yaml")  # checked statically
    result = await Engine(gateway, store=store).run(workflow, {"image": png_bytes})
    print(result.outputs, result.trace)
"""

from mmserve.workflow.language.definition import Workflow
from mmserve.workflow.language.loader import (
    load_workflow,
    load_workflow_text,
    load_workflows,
    validate_paths,
    workflow_files,
)
from mmserve.workflow.language.spec import InputSpec, StepSpec, WorkflowSpec
from mmserve.workflow.run.context import LazyStore
from mmserve.workflow.run.engine import Engine
from mmserve.workflow.run.events import (
    RUN_EVENT,
    EventHook,
    ItemProgress,
    RunEvent,
    StepFinished,
    StepStarted,
)
from mmserve.workflow.run.result import RunResult, TraceEntry, to_jsonable, trace_of

__all__ = [
    "RUN_EVENT",
    "Engine",
    "EventHook",
    "InputSpec",
    "ItemProgress",
    "LazyStore",
    "RunEvent",
    "RunResult",
    "StepFinished",
    "StepSpec",
    "StepStarted",
    "TraceEntry",
    "Workflow",
    "WorkflowSpec",
    "load_workflow",
    "load_workflow_text",
    "load_workflows",
    "to_jsonable",
    "trace_of",
    "validate_paths",
    "workflow_files",
]
