"""Loading workflow YAML files: read safely, check statically, build :class:`Workflow` s."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from mmserve.errors import SourceLocation, WorkflowIssue, WorkflowValidationError
from mmserve.registry import Registry, registry
from mmserve.workflow.checks import check_document
from mmserve.workflow.definition import Workflow
from mmserve.workflow.yaml_source import YamlLimits, read_yaml

WORKFLOW_SUFFIXES = (".yaml", ".yml")


def _check_text(
    text: str, file: str, source: Path | None, reg: Registry
) -> tuple[Workflow | None, list[WorkflowIssue]]:
    doc = read_yaml(text, file=file)
    result = check_document(doc, registry=reg)
    if result.spec is None or result.issues:
        return None, result.issues
    workflow = Workflow(result.spec, source=source, output_types=result.output_types)
    return workflow, []


def _check_file(path: Path, reg: Registry) -> tuple[Workflow | None, list[WorkflowIssue]]:
    file = str(path)
    start = SourceLocation(file, 1, 1)
    limit = YamlLimits().max_bytes
    try:
        if path.stat().st_size > limit:
            size = path.stat().st_size
            message = f"the file is {size} bytes, over the limit of {limit}"
            return None, [WorkflowIssue(start, message, "a workflow is a short text file")]
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [WorkflowIssue(start, "no such file", "check the path")]
    except UnicodeDecodeError as exc:
        return None, [WorkflowIssue(start, f"the file is not UTF-8 text ({exc.reason})")]
    except OSError as exc:
        return None, [WorkflowIssue(start, f"cannot read the file: {exc.strerror or exc}")]
    return _check_text(text, file, path, reg)


def load_workflow_text(
    text: str, *, file: str = "<string>", registry: Registry = registry
) -> Workflow:
    """A workflow from YAML text; ``file`` names it in issues. Raises WorkflowValidationError."""
    workflow, issues = _check_text(text, file, None, registry)
    if workflow is None:
        raise WorkflowValidationError(issues)
    return workflow


def load_workflow(path: str | Path, *, registry: Registry = registry) -> Workflow:
    """One workflow file. Raises :class:`WorkflowValidationError` with every issue found."""
    workflow, issues = _check_file(Path(path), registry)
    if workflow is None:
        raise WorkflowValidationError(issues)
    return workflow


def workflow_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named directly, plus the *.yaml / *.yml files in named folders (sorted)."""
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            files.extend(
                sorted(p for p in path.iterdir() if p.suffix in WORKFLOW_SUFFIXES and p.is_file())
            )
        else:
            files.append(path)
    return files


def _load_all(
    paths: Iterable[str | Path], reg: Registry
) -> tuple[dict[str, Workflow], list[WorkflowIssue]]:
    workflows: dict[str, Workflow] = {}
    issues: list[WorkflowIssue] = []
    for path in workflow_files(paths):
        workflow, found = _check_file(path, reg)
        issues.extend(found)
        if workflow is None:
            continue
        first = workflows.get(workflow.name)
        if first is not None:
            issues.append(_duplicate(workflow, first))
            continue
        workflows[workflow.name] = workflow
    return workflows, issues


def _duplicate(workflow: Workflow, first: Workflow) -> WorkflowIssue:
    # re-read cheaply for the position of `name:`; the file has just been read successfully
    file = str(workflow.source)
    location = SourceLocation(file, 1, 1)
    if workflow.source is not None:
        doc = read_yaml(workflow.source.read_text(encoding="utf-8"), file=file)
        location = doc.location(("name",))
    return WorkflowIssue(
        location,
        f"duplicate workflow name {workflow.name!r}, already defined in {first.source}",
        "workflow names must be unique across the loaded files; rename one",
    )


def load_workflows(
    paths: Iterable[str | Path], *, registry: Registry = registry
) -> dict[str, Workflow]:
    """Every workflow in the given files and folders, by name.

    Raises :class:`WorkflowValidationError` with the issues of *all* files (duplicate names
    included) when any file is invalid.
    """
    workflows, issues = _load_all(paths, registry)
    if issues:
        raise WorkflowValidationError(issues)
    return workflows


def validate_paths(
    paths: Iterable[str | Path], *, registry: Registry = registry
) -> list[WorkflowIssue]:
    """Every issue of the given files and folders; empty when all are valid. Never raises
    for bad files (this is what ``mmserve validate`` runs)."""
    return _load_all(paths, registry)[1]


__all__ = [
    "WORKFLOW_SUFFIXES",
    "load_workflow",
    "load_workflow_text",
    "load_workflows",
    "validate_paths",
    "workflow_files",
]
