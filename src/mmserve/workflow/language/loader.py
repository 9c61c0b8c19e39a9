"""Loading workflow YAML files: read safely, check statically, build :class:`Workflow` s."""

from __future__ import annotations

import graphlib
import itertools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mmserve.errors import SourceLocation, WorkflowIssue, WorkflowValidationError
from mmserve.registry import Registry, registry
from mmserve.workflow.language.checks import check_document
from mmserve.workflow.language.definition import Workflow
from mmserve.workflow.language.spec import WORKFLOW_PREFIX
from mmserve.workflow.language.yaml_source import YamlDocument, YamlLimits, read_yaml

WORKFLOW_SUFFIXES = (".yaml", ".yml")


def _check_doc(
    doc: YamlDocument,
    source: Path | None,
    reg: Registry,
    workflows: Mapping[str, Workflow | None],
) -> tuple[Workflow | None, list[WorkflowIssue]]:
    result = check_document(doc, registry=reg, workflows=workflows)
    if result.spec is None or result.issues:
        return None, result.issues
    workflow = Workflow(
        result.spec,
        source=source,
        output_types=result.output_types,
        subworkflows=result.subworkflows,
        deterministic=result.deterministic,
    )
    return workflow, []


def _check_text(
    text: str,
    file: str,
    source: Path | None,
    reg: Registry,
    workflows: Mapping[str, Workflow] | None = None,
) -> tuple[Workflow | None, list[WorkflowIssue]]:
    return _check_doc(read_yaml(text, file=file), source, reg, workflows or {})


def _read_file(path: Path) -> tuple[YamlDocument | None, list[WorkflowIssue]]:
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
    return read_yaml(text, file=file), []


def _check_file(
    path: Path, reg: Registry, workflows: Mapping[str, Workflow] | None = None
) -> tuple[Workflow | None, list[WorkflowIssue]]:
    doc, issues = _read_file(path)
    if doc is None:
        return None, issues
    return _check_doc(doc, path, reg, workflows or {})


def load_workflow_text(
    text: str,
    *,
    file: str = "<string>",
    registry: Registry = registry,
    workflows: Mapping[str, Workflow] | None = None,
) -> Workflow:
    """A workflow from YAML text; ``file`` names it in issues; ``workflows`` are those its
    ``uses: workflow:NAME`` steps may name. Raises WorkflowValidationError."""
    workflow, issues = _check_text(text, file, None, registry, workflows)
    if workflow is None:
        raise WorkflowValidationError(issues)
    return workflow


def load_workflow(
    path: str | Path,
    *,
    registry: Registry = registry,
    workflows: Mapping[str, Workflow] | None = None,
) -> Workflow:
    """One workflow file (``workflows``: those its ``uses: workflow:NAME`` steps may name).
    Raises :class:`WorkflowValidationError` with every issue found."""
    workflow, issues = _check_file(Path(path), registry, workflows)
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
    """Check every file, each after the workflows it uses (``uses: workflow:NAME``)."""
    workflows: dict[str, Workflow] = {}
    invalid: dict[str, Workflow | None] = {}  # names whose files have problems
    issues: list[WorkflowIssue] = []
    docs: list[tuple[Path, YamlDocument]] = []
    for path in workflow_files(paths):
        doc, found = _read_file(path)
        issues.extend(found)
        if doc is not None:
            docs.append((path, doc))
    graph = {name: uses for name, uses in map(_uses_of, (d for _, d in docs)) if name}
    cyclic, found = _cycles(graph, {_uses_of(doc)[0]: doc for _, doc in reversed(docs)})
    issues.extend(found)
    ranks = _ranks(graph, cyclic)
    for path, doc in sorted(docs, key=lambda d: ranks.get(_uses_of(d[1])[0], len(ranks))):
        if _uses_of(doc)[0] in cyclic:
            continue  # reported once as a cycle; the rest of its checks would only echo it
        workflow, found = _check_doc(doc, path, reg, {**invalid, **workflows})
        issues.extend(found)
        if workflow is None:
            invalid.setdefault(_uses_of(doc)[0], None)
            continue
        first = workflows.get(workflow.name)
        if first is not None:
            issues.append(_duplicate(workflow, first))
            continue
        workflows[workflow.name] = workflow
    return workflows, issues


def _uses_of(doc: YamlDocument) -> tuple[str, dict[str, str]]:
    """The document's workflow name ('' when it has none) and step id -> sub-workflow name."""
    root: dict[str, Any] = doc.value if isinstance(doc.value, dict) else {}
    name = root.get("name") if isinstance(root.get("name"), str) else ""
    raw_steps = root.get("steps")
    steps: dict[str, Any] = raw_steps if isinstance(raw_steps, dict) else {}
    uses = {
        str(step_id): step["uses"].removeprefix(WORKFLOW_PREFIX)
        for step_id, step in steps.items()
        if isinstance(step, dict)
        and isinstance(step.get("uses"), str)
        and step["uses"].startswith(WORKFLOW_PREFIX)
    }
    return str(name), uses


def _cycles(
    graph: dict[str, dict[str, str]], docs: dict[str, YamlDocument]
) -> tuple[set[str], list[WorkflowIssue]]:
    """The workflows on a cycle of sub-workflow uses, and one issue per cycle (at each of
    its `uses:` lines)."""
    cyclic: set[str] = set()
    issues: list[WorkflowIssue] = []
    seen: set[frozenset[str]] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycle = [*trail[trail.index(name) :], name]
            if frozenset(cycle) in seen:
                return
            seen.add(frozenset(cycle))
            cyclic.update(cycle)
            text = " -> ".join(cycle)
            for current, following in itertools.pairwise(cycle):
                step = next(s for s, sub in graph[current].items() if sub == following)
                where = docs[current].location(("steps", step, "uses"))
                issues.append(
                    WorkflowIssue(
                        where,
                        f"workflows use each other in a cycle: {text}",
                        "a workflow cannot run itself, directly or through other workflows; "
                        "remove one of these `uses: workflow:` steps",
                    )
                )
            return
        for sub in sorted(set(graph.get(name, {}).values())):
            if sub in graph:
                visit(sub, [*trail, name])

    for name in sorted(graph):
        visit(name, [])
    return cyclic, issues


def _ranks(graph: dict[str, dict[str, str]], cyclic: set[str]) -> dict[str, int]:
    """Name -> position in an order where every workflow comes after those it uses."""
    sorter = graphlib.TopologicalSorter(
        {
            name: {s for s in uses.values() if s in graph and s not in cyclic}
            for name, uses in graph.items()
            if name not in cyclic
        }
    )
    return {name: rank for rank, name in enumerate(sorter.static_order())}


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
