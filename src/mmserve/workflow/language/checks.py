"""The static checks of a workflow document, run before anything executes.

Order: YAML-level problems (syntax, limits, tags) stop early; otherwise every other problem of
the file is collected -- shape, step plugins, step inputs, references, types, cycles,
outputs -- each at its own line and column with a hint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mmserve.errors import PluginError, WorkflowIssue
from mmserve.registry import Registry
from mmserve.workflow.language.checks_keys import check_cache, check_for_each, check_when
from mmserve.workflow.language.checks_structure import Parts, check_structure
from mmserve.workflow.language.checks_values import ValueChecker, has_references
from mmserve.workflow.language.definition import Workflow, workflow_step_class
from mmserve.workflow.language.issues import IssueSink, short, suggestion
from mmserve.workflow.language.spec import StepSpec, WorkflowSpec
from mmserve.workflow.language.typecheck import field_type
from mmserve.workflow.language.yaml_source import YamlDocument


@dataclass
class CheckResult:
    """What the checks learnt: the spec (None when there are issues) and the DAG."""

    spec: WorkflowSpec | None
    issues: list[WorkflowIssue]
    #: step id -> ids of the steps it references
    dependencies: dict[str, set[str]] = field(default_factory=dict)
    #: output name -> the Python type it yields (``Any`` when unknown)
    output_types: dict[str, Any] = field(default_factory=dict)
    #: step id -> the workflow it runs (``uses: workflow:NAME``)
    subworkflows: dict[str, Workflow] = field(default_factory=dict)
    #: every step declares ``deterministic = True`` (the workflow may be cached as a step)
    deterministic: bool = False


def check_document(
    doc: YamlDocument, *, registry: Registry, workflows: Mapping[str, Workflow | None] | None = None
) -> CheckResult:
    """Run every static check on a read document; ``workflows`` are the loaded workflows a
    ``uses: workflow:NAME`` step may run (None for one whose file has problems)."""
    sink = IssueSink(doc)
    if doc.issues:
        return CheckResult(None, sink.issues)
    parts = check_structure(sink)
    if parts is None:
        return CheckResult(None, sink.issues)
    known = workflows or {}
    classes = {
        step_id: _plugin(sink, registry, step_id, spec, known)
        for step_id, spec in parts.steps.items()
    }
    subworkflows: dict[str, Workflow] = {}
    for step_id, spec in parts.steps.items():
        sub = known.get(spec.workflow) if spec is not None and spec.workflow else None
        if sub is not None:
            subworkflows[step_id] = sub
    checker = ValueChecker(sink, parts, classes)
    for step_id, spec in parts.steps.items():
        if spec is not None:
            _check_step(checker, step_id, spec)
    _check_cycles(sink, checker.dependencies)
    output_types = _check_outputs(checker)
    workflow = None if sink.issues else _assemble(parts)
    issues = sorted(sink.issues, key=lambda i: (i.location.line, i.location.column))
    deterministic = all(getattr(c, "deterministic", False) is True for c in classes.values())
    return CheckResult(
        workflow, issues, checker.dependencies, output_types, subworkflows, deterministic
    )


def _assemble(parts: Parts) -> WorkflowSpec:
    return WorkflowSpec(
        name=parts.name,
        description=parts.description,
        inputs={k: v for k, v in parts.inputs.items() if v is not None},
        steps={k: v for k, v in parts.steps.items() if v is not None},
        outputs=parts.outputs,
    )


def _plugin(
    sink: IssueSink,
    registry: Registry,
    step_id: str,
    spec: StepSpec | None,
    workflows: Mapping[str, Workflow | None],
) -> Any:
    if spec is None:
        return None
    if spec.workflow is not None:
        found = workflows.get(spec.workflow)
        if found is not None:
            return workflow_step_class(found)
        if spec.workflow in workflows:
            sink.add(
                ("steps", step_id, "uses"),
                f"step {step_id!r} uses the workflow {spec.workflow!r}, which has problems",
                "fix the problems reported in that workflow's file first",
            )
            return None
        hint = suggestion(spec.workflow, [n for n in workflows if n], noun="workflows")
        sink.add(
            ("steps", step_id, "uses"),
            f"step {step_id!r} uses an unknown workflow {spec.workflow!r}",
            f"{hint} (a sub-workflow must be loaded together with this one: put both files "
            "in the config's workflow folders)",
        )
        return None
    names = registry.names("step")
    if spec.uses not in names:
        hint = suggestion(spec.uses, names, noun="step plugins")
        sink.add(
            ("steps", step_id, "uses"),
            f"step {step_id!r} uses an unknown step plugin {spec.uses!r}",
            f"{hint} (install the package that provides it; `mmserve plugins` lists them)",
        )
        return None
    try:
        return registry.get("step", spec.uses)
    except PluginError as exc:
        sink.add(
            ("steps", step_id, "uses"),
            f"step plugin {spec.uses!r} could not be loaded: {exc.message}",
            exc.hint,
        )
        return None


def _check_step(checker: ValueChecker, step_id: str, spec: StepSpec) -> None:
    checker.current = step_id
    cls = checker.step_classes[step_id]
    check_for_each(checker, step_id, spec)
    _check_with(checker, step_id, spec, cls)
    checker.items = {}
    check_when(checker, step_id, spec)
    check_cache(checker, step_id, spec, cls)


def _check_with(checker: ValueChecker, step_id: str, spec: StepSpec, cls: Any) -> None:
    base = ("steps", step_id, "with")
    owner = f"step {step_id!r} ({spec.uses}) input"
    if cls is None:  # unknown plugin, reported already: still check the references
        for key, value in spec.with_.items():
            checker.value(value, Any, (*base, key), owner, key)
        return
    fields = {info.alias or name: info for name, info in cls.Inputs.model_fields.items()}
    open_ended = cls.Inputs.model_config.get("extra") == "allow"
    for key, value in spec.with_.items():
        info = fields.get(key)
        if info is None and open_ended:
            checker.value(value, Any, (*base, key), owner, key)
        elif info is None:
            checker.sink.add(
                (*base, key),
                f"step {step_id!r} ({spec.uses}) has no input {key!r}",
                suggestion(key, fields, noun=f"inputs of {spec.uses}"),
                key=True,
            )
            checker.value(value, Any, (*base, key), owner, key)
        else:
            checker.value(value, field_type(info), (*base, key), owner, key, info)
    for name, info in fields.items():
        if info.is_required() and name not in spec.with_:
            checker.sink.add(
                ("steps", step_id),
                f"step {step_id!r} ({spec.uses}) is missing its required input {name!r}",
                f"add `{name}: ...` under `with:`",
                key=True,
            )


def _check_cycles(sink: IssueSink, dependencies: dict[str, set[str]]) -> None:
    """Report every cycle once, naming its path (``a -> b -> a``)."""
    reported: set[frozenset[str]] = set()
    done: set[str] = set()

    def visit(step: str, trail: list[str]) -> None:
        if step in trail:
            cycle = [*trail[trail.index(step) :], step]
            if frozenset(cycle) not in reported:
                reported.add(frozenset(cycle))
                sink.add(
                    ("steps", cycle[0]),
                    "steps form a cycle: " + " -> ".join(cycle),
                    "a step cannot depend on its own result, directly or through other "
                    "steps; remove one of these references",
                    key=True,
                )
            return
        if step in done:
            return
        for dependency in sorted(dependencies.get(step, ())):
            visit(dependency, [*trail, step])
        done.add(step)

    for step in dependencies:
        visit(step, [])


def _check_outputs(checker: ValueChecker) -> dict[str, Any]:
    checker.current = None
    types: dict[str, Any] = {}
    for name, value in checker.parts.outputs.items():
        path = ("outputs", name)
        if not has_references(value):
            checker.sink.add(
                path,
                f"output {name!r} references nothing: {short(value)}",
                f"map the output to a step result, e.g. `{name}: ${{STEP.FIELD}}`",
            )
        elif isinstance(value, str):
            types[name] = checker.string_type(value, path) or Any
        else:
            checker.value(value, Any, path, "output", name)
            types[name] = Any
    return types


__all__ = ["CheckResult", "check_document"]
