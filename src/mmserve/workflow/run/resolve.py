"""Run-time resolution of ``${...}`` references against input values and step outputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from mmserve.workflow.language.references import STAR, Reference, parse_template


class ResolveError(Exception):
    """A reference that points at nothing in this run (e.g. ``[0]`` of an empty list)."""

    def __init__(self, ref: Reference, reason: str) -> None:
        super().__init__(f"cannot resolve {ref.text}: {reason}")
        self.ref = ref
        self.reason = reason


def _segment(current: Any, segment: str | int, ref: Reference, upto: int) -> Any:
    where = ref.describe(upto=upto)
    if current is None:
        raise ResolveError(ref, f"{where} is null")
    if isinstance(segment, int):
        if isinstance(current, str | bytes | Mapping) or not hasattr(current, "__getitem__"):
            raise ResolveError(ref, f"{where} is not a list")
        try:
            return current[segment]
        except IndexError:
            size = len(current) if isinstance(current, Sequence) else "?"
            raise ResolveError(
                ref, f"{where} has {size} items, so there is no [{segment}]"
            ) from None
    if isinstance(current, BaseModel):
        if segment in type(current).model_fields:
            return getattr(current, segment)
    elif isinstance(current, Mapping) and segment in current:
        return current[segment]
    raise ResolveError(ref, f"{where} has no field {segment!r}")


def lookup(ref: Reference, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
    """The value ``ref`` points at (``outputs`` holds step results and for_each items)."""
    current: Any = inputs if ref.is_input else outputs[ref.root]
    return _follow(current, ref, 0)


def _follow(current: Any, ref: Reference, start: int) -> Any:
    for index in range(start, len(ref.path)):
        segment = ref.path[index]
        if segment == STAR:
            if current is None:
                return None
            if isinstance(current, str | bytes | Mapping) or not isinstance(current, Sequence):
                raise ResolveError(ref, f"{ref.describe(upto=index)} is not a list")
            return [_follow(item, ref, index + 1) for item in current]
        current = _segment(current, segment, ref, index)
    return current


def as_text(value: Any) -> str:
    """How a value reads when embedded in a string: ``true``, ``3``, ``a, b``, ``""`` for null."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(as_text(v) for v in value)
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return str(value)


def resolve(value: Any, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
    """``value`` with every reference replaced (a lone reference keeps the value's type)."""
    if isinstance(value, str):
        if "${" not in value:
            return value
        template = parse_template(value)
        if template.single is not None:
            return lookup(template.single, inputs, outputs)
        return "".join(
            part if isinstance(part, str) else as_text(lookup(part, inputs, outputs))
            for part in template.parts
        )
    if isinstance(value, list):
        return [resolve(item, inputs, outputs) for item in value]
    if isinstance(value, dict):
        return {key: resolve(item, inputs, outputs) for key, item in value.items()}
    return value


__all__ = ["ResolveError", "as_text", "lookup", "resolve"]
