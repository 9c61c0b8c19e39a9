"""``${...}`` references: parsing them out of ``with:`` and ``outputs:`` values.

Grammar: ``${ROOT.NAME(.NAME | [INDEX] | [*])*}`` where ROOT is ``inputs``, a step id or a
for_each item name. ``[*]`` maps the rest of the path over a list (``${step[*].field}``: one
field of every item). A string
that is exactly one reference keeps the referenced value's type; a string with references
embedded in text (``"a photo of ${inputs.x}"``) is interpolated into a string. ``$${`` writes
a literal ``${``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mmserve.workflow.language.yaml_source import PathKey, YamlPath

INPUTS_ROOT = "inputs"
#: The path segment ``[*]``: every item of a list.
STAR = "[*]"

_NAME = r"[A-Za-z_][A-Za-z0-9_\-]*"
_REFERENCE = re.compile(r"\$\{\s*(?P<body>[^{}]*?)\s*\}")
_BODY = re.compile(rf"(?P<root>{_NAME})(?P<rest>(?:\.{_NAME}|\[\d+\]|\[\*\])*)")
_SEGMENT = re.compile(rf"\.(?P<name>{_NAME})|\[(?P<index>\d+)\]|(?P<star>\[\*\])")


class ReferenceSyntaxError(ValueError):
    """A ``${`` that does not start a well-formed reference."""

    def __init__(self, text: str, message: str) -> None:
        super().__init__(message)
        self.text = text


@dataclass(frozen=True)
class Reference:
    """``${root.path...}``: ``root`` is ``inputs`` or a step id."""

    root: str
    path: tuple[PathKey, ...]
    text: str

    @property
    def is_input(self) -> bool:
        return self.root == INPUTS_ROOT

    def describe(self, upto: int | None = None) -> str:
        """The reference written back, optionally only its first ``upto`` path segments."""
        segments = self.path if upto is None else self.path[:upto]
        out = self.root
        for seg in segments:
            if seg == STAR:
                out += STAR
            else:
                out += f"[{seg}]" if isinstance(seg, int) else f".{seg}"
        return "${" + out + "}"


@dataclass(frozen=True)
class Template:
    """A string value: literal text parts and references, in order."""

    parts: tuple[str | Reference, ...]

    @property
    def references(self) -> list[Reference]:
        return [p for p in self.parts if isinstance(p, Reference)]

    @property
    def single(self) -> Reference | None:
        """The reference when the string is exactly one reference (it keeps its type)."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Reference):
            return self.parts[0]
        return None


def incomplete(ref: Reference) -> ReferenceSyntaxError:
    """The error for ``${NAME}`` alone where NAME is not a for_each item (those stand alone)."""
    return ReferenceSyntaxError(
        ref.text, f"incomplete reference {ref.text!r}: name a field, e.g. ${{{ref.root}.FIELD}}"
    )


def parse_reference(text: str, body: str) -> Reference:
    match = _BODY.fullmatch(body)
    if match is None:
        raise ReferenceSyntaxError(
            text,
            f"malformed reference {text!r}: expected ${{inputs.NAME}} or "
            "${STEP.FIELD} with optional .FIELD, [INDEX] and [*] parts",
        )
    path: list[PathKey] = []
    for seg in _SEGMENT.finditer(match.group("rest")):
        index = seg.group("index")
        if seg.group("star"):
            path.append(STAR)
        else:
            path.append(int(index) if index is not None else seg.group("name"))
    return Reference(match.group("root"), tuple(path), text)


def parse_template(value: str) -> Template:
    """Split a string into text and references; raises :class:`ReferenceSyntaxError`."""
    parts: list[str | Reference] = []
    position = 0
    text = ""
    while position < len(value):
        start = value.find("${", position)
        if start < 0:
            text += value[position:]
            break
        if start > 0 and value[start - 1] == "$":  # `$${` escapes a literal `${`
            text += value[position : start - 1] + "${"
            position = start + 2
            continue
        text += value[position:start]
        match = _REFERENCE.match(value, start)
        if match is None:
            snippet = value[start : start + 40]
            raise ReferenceSyntaxError(
                snippet, f"unclosed reference {snippet!r}: a `${{` needs a matching `}}`"
            )
        if text:
            parts.append(text)
            text = ""
        parts.append(parse_reference(match.group(0), match.group("body")))
        position = match.end()
    if text or not parts:
        parts.append(text)
    return Template(tuple(parts))


def walk_strings(value: Any, path: YamlPath = ()) -> Iterator[tuple[YamlPath, str]]:
    """Every string inside nested lists/dicts, with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from walk_strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk_strings(item, (*path, index))


__all__ = [
    "INPUTS_ROOT",
    "STAR",
    "Reference",
    "ReferenceSyntaxError",
    "Template",
    "incomplete",
    "parse_reference",
    "parse_template",
    "walk_strings",
]
