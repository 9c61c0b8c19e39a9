"""A safe YAML reader that remembers where every value came from.

``yaml.safe_load`` forgets positions, so errors could only name the file. Here the document is
*composed* with PyYAML's ``SafeLoader`` (nodes carry start/end marks) and turned into plain
Python values by hand, keeping a map from each value's path (``("steps", "caption", "with")``)
to its marks. Building by hand also lets us refuse what a workflow never needs and an attacker
would love: oversized files, deep nesting, alias bombs, custom tags, duplicate keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mmserve.errors import SourceLocation, WorkflowIssue

PathKey = str | int
YamlPath = tuple[PathKey, ...]

_TAG = "tag:yaml.org,2002:"
#: Tags whose scalars PyYAML's safe constructor turns into plain values.
_CONSTRUCTED_TAGS = {f"{_TAG}{t}" for t in ("int", "float", "bool", "null")}
#: Kept as the text written (a date is just a string to a workflow).
_TEXT_TAGS = {f"{_TAG}str", f"{_TAG}timestamp"}
_ALLOWED_TAGS = _CONSTRUCTED_TAGS | _TEXT_TAGS | {f"{_TAG}seq", f"{_TAG}map"}


@dataclass(frozen=True)
class YamlLimits:
    """Caps on what a workflow file may cost to read."""

    max_bytes: int = 1024 * 1024
    max_depth: int = 32
    #: Values after alias expansion: ``a: &x [..]; b: [*x, *x, ...]`` cannot explode past this.
    max_nodes: int = 20_000


class _Refused(Exception):
    def __init__(self, node: Node, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.node = node
        self.message = message
        self.hint = hint


@dataclass
class YamlDocument:
    """Plain Python values of one YAML file plus where each value and mapping key sits."""

    file: str
    text: str
    value: Any = None
    value_marks: dict[YamlPath, tuple[yaml.Mark, yaml.Mark]] = field(default_factory=dict)
    key_marks: dict[YamlPath, yaml.Mark] = field(default_factory=dict)
    issues: list[WorkflowIssue] = field(default_factory=list)

    def location(self, path: YamlPath, *, key: bool = False) -> SourceLocation:
        """Where ``path`` is (its key when ``key``); falls back to the nearest ancestor."""
        probe = path
        while True:
            if key and probe in self.key_marks:
                return self._loc(self.key_marks[probe])
            if probe in self.value_marks:
                return self._loc(self.value_marks[probe][0])
            if not probe:
                return SourceLocation(self.file, 1, 1)
            probe = probe[:-1]

    def text_location(self, path: YamlPath, needle: str) -> SourceLocation:
        """Where ``needle`` (e.g. a reference) is written inside the scalar at ``path``."""
        marks = self.value_marks.get(path)
        if marks is None:
            return self.location(path)
        start, end = marks
        lines = self.text.splitlines()
        for line_no in range(start.line, min(end.line, len(lines) - 1) + 1):
            begin = start.column if line_no == start.line else 0
            column = lines[line_no].find(needle, begin)
            if column >= 0:
                return SourceLocation(self.file, line_no + 1, column + 1)
        return self._loc(start)

    def _loc(self, mark: yaml.Mark) -> SourceLocation:
        return SourceLocation(self.file, mark.line + 1, mark.column + 1)


def read_yaml(text: str, *, file: str, limits: YamlLimits | None = None) -> YamlDocument:
    """Read ``text`` safely; problems land in ``document.issues`` (never raises for bad YAML)."""
    limits = limits or YamlLimits()
    doc = YamlDocument(file=file, text=text)
    size = len(text.encode("utf-8", errors="replace"))
    if size > limits.max_bytes:
        doc.issues.append(
            WorkflowIssue(
                SourceLocation(file, 1, 1),
                f"the file is {size} bytes, over the limit of {limits.max_bytes}",
                "a workflow is a short description of steps; split it or remove embedded data",
            )
        )
        return doc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        doc.issues.append(_syntax_issue(file, exc))
        return doc
    except yaml.YAMLError as exc:
        doc.issues.append(WorkflowIssue(SourceLocation(file, 1, 1), f"YAML error: {exc}"))
        return doc
    except RecursionError:
        doc.issues.append(_too_deep(file, SourceLocation(file, 1, 1), limits))
        return doc
    if root is None:
        doc.issues.append(
            WorkflowIssue(
                SourceLocation(file, 1, 1),
                "the file is empty",
                "a workflow needs at least `name:`, `steps:` and `outputs:`",
            )
        )
        return doc
    builder = _Builder(doc, limits)
    try:
        doc.value = builder.build(root, (), 0)
    except _Refused as exc:
        doc.value = None
        mark = exc.node.start_mark
        location = SourceLocation(file, mark.line + 1, mark.column + 1)
        doc.issues.append(WorkflowIssue(location, exc.message, exc.hint))
    return doc


def _syntax_issue(file: str, exc: yaml.MarkedYAMLError) -> WorkflowIssue:
    mark = exc.problem_mark or exc.context_mark
    location = SourceLocation(file, mark.line + 1, mark.column + 1) if mark else None
    parts = [p for p in (exc.context, exc.problem) if p]
    message = "YAML syntax error: " + (", ".join(parts) or "malformed document")
    hint = "check indentation, colons and quotes around this position"
    said = f"{exc.context} {exc.problem}"
    if "expected a single document" in said:
        hint = "a workflow file holds one document: remove the extra `---`"
    elif "flow mapping" in said and "'{'" in said:
        hint = (
            "a reference inside `{...}` must be quoted: write `{image: '${inputs.image}'}`, "
            "or use block style (`image: ${inputs.image}` on its own line)"
        )
    return WorkflowIssue(location or SourceLocation(file, 1, 1), message, hint)


def _too_deep(file: str, location: SourceLocation, limits: YamlLimits) -> WorkflowIssue:
    return WorkflowIssue(
        location,
        f"the document is nested deeper than {limits.max_depth} levels",
        "flatten the structure; workflows never need deep nesting",
    )


class _Builder:
    def __init__(self, doc: YamlDocument, limits: YamlLimits) -> None:
        self.doc = doc
        self.limits = limits
        self.nodes = 0
        self.constructor = yaml.SafeLoader("")

    def build(self, node: Node, path: YamlPath, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            raise _Refused(
                node,
                f"the document expands to more than {self.limits.max_nodes} values",
                "aliases (*name) that repeat large anchors are refused; write the values out",
            )
        if depth > self.limits.max_depth:
            issue = _too_deep(self.doc.file, self.doc.location(path), self.limits)
            raise _Refused(node, issue.message, issue.hint)
        if node.tag not in _ALLOWED_TAGS:
            self._issue(
                node,
                f"YAML tag {node.tag!r} is not allowed",
                "only plain YAML values (strings, numbers, booleans, null, lists, mappings) "
                "are accepted; remove the tag",
            )
            return None
        self.doc.value_marks.setdefault(path, (node.start_mark, node.end_mark))
        if isinstance(node, MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        if node.tag in _TEXT_TAGS:
            return node.value
        return self.constructor.construct_object(node, deep=True)

    def _mapping(self, node: MappingNode, path: YamlPath, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == f"{_TAG}merge":
                self._issue(
                    key_node, "YAML merge keys (<<) are not supported", "write the keys out"
                )
                continue
            if not isinstance(key_node, ScalarNode):
                self._issue(key_node, "mapping keys must be plain strings")
                continue
            # The raw text, so that keys like `on`/`yes`/`1` stay the strings written.
            key = key_node.value
            if key in result:
                first = self.doc.key_marks[(*path, key)]
                self._issue(
                    key_node,
                    f"duplicate key {key!r} (first defined at line {first.line + 1})",
                    "each key may appear once in a mapping; remove or rename one",
                )
                continue
            self.doc.key_marks[(*path, key)] = key_node.start_mark
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result

    def _issue(self, node: Node, message: str, hint: str | None = None) -> None:
        mark = node.start_mark
        location = SourceLocation(self.doc.file, mark.line + 1, mark.column + 1)
        self.doc.issues.append(WorkflowIssue(location, message, hint))


__all__ = ["PathKey", "YamlDocument", "YamlLimits", "YamlPath", "read_yaml"]
