"""Run-time validation of workflow input values against their YAML declarations.

Used by the engine for every run and by the loader for declared defaults. Values arrive from
JSON (numbers, strings, base64 images), from the CLI (everything a string) or from Python
callers (PIL images, bytes): numeric and boolean *text* is accepted, but a boolean is never
an integer and a fractional number never an integer. Every failure is an
:class:`~mmserve.errors.InputError` whose one-line message names the input.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

from mmserve.errors import InputError
from mmserve.media import coerce_image
from mmserve.workflow.language.spec import InputSpec

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}
_KIND = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "array": "a list",
    "object": "an object (a mapping of names to values)",
}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _wrong(name: str, spec: InputSpec, value: Any) -> InputError:
    return InputError(
        f"input {name!r}: expected {_KIND[spec.type]}, got {type(value).__name__} {_short(value)}",
        name=name,
    )


def _integer(name: str, spec: InputSpec, value: Any) -> int:
    if isinstance(value, bool):
        raise _wrong(name, spec, value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _wrong(name, spec, value)


def _number(name: str, spec: InputSpec, value: Any) -> float:
    if isinstance(value, bool):
        raise _wrong(name, spec, value)
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise _wrong(name, spec, value)
    return number


def _boolean(name: str, spec: InputSpec, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _wrong(name, spec, value)


def _check_bounds(name: str, spec: InputSpec, value: Any) -> None:
    if isinstance(value, int | float):
        if spec.minimum is not None and value < spec.minimum:
            raise InputError(
                f"input {name!r}: {value} is below the minimum {spec.minimum:g}", name=name
            )
        if spec.maximum is not None and value > spec.maximum:
            raise InputError(
                f"input {name!r}: {value} is above the maximum {spec.maximum:g}", name=name
            )
    if isinstance(value, str | list):
        unit = "characters" if isinstance(value, str) else "items"
        if spec.min_length is not None and len(value) < spec.min_length:
            raise InputError(
                f"input {name!r}: has {len(value)} {unit}, fewer than {spec.min_length}",
                name=name,
            )
        if spec.max_length is not None and len(value) > spec.max_length:
            raise InputError(
                f"input {name!r}: has {len(value)} {unit}, more than {spec.max_length}",
                name=name,
            )
    if spec.enum is not None and value not in spec.enum:
        allowed = ", ".join(_short(v) for v in spec.enum)
        raise InputError(
            f"input {name!r}: {_short(value)} is not one of the allowed values: {allowed}",
            name=name,
        )


def validate_value(spec: InputSpec, value: Any, *, name: str) -> Any:
    """``value`` converted to the declared type and checked; raises :class:`InputError`."""
    if value is None:
        if not spec.required and spec.default is None:
            return None
        raise InputError(f"input {name!r}: a value is required, got null", name=name)
    result: Any
    if spec.type == "image":
        return coerce_image(value, name=name)
    if spec.type == "string":
        if not isinstance(value, str):
            raise _wrong(name, spec, value)
        result = value
    elif spec.type == "integer":
        result = _integer(name, spec, value)
    elif spec.type == "number":
        result = _number(name, spec, value)
    elif spec.type == "boolean":
        result = _boolean(name, spec, value)
    elif spec.type == "array":
        if not isinstance(value, list | tuple):
            raise _wrong(name, spec, value)
        items = spec.items
        result = [
            item if items is None else validate_value(items, item, name=f"{name}[{i}]")
            for i, item in enumerate(value)
        ]
    else:
        if not isinstance(value, Mapping):
            raise _wrong(name, spec, value)
        result = dict(value)
    _check_bounds(name, spec, result)
    return result


def validate_inputs(specs: Mapping[str, InputSpec], values: Mapping[str, Any]) -> dict[str, Any]:
    """All workflow inputs validated, defaults applied; raises one InputError naming every
    bad input (so a caller fixes them all at once)."""
    if not isinstance(values, Mapping):
        raise InputError(f"inputs must be an object of name -> value, got {type(values).__name__}")
    errors: list[InputError] = []
    declared = ", ".join(sorted(specs)) or "(none)"
    for name in sorted(set(values) - set(specs)):
        errors.append(
            InputError(f"unexpected input {name!r}; this workflow takes: {declared}", name=name)
        )
    result: dict[str, Any] = {}
    for name, spec in specs.items():
        try:
            if name in values:
                result[name] = validate_value(spec, values[name], name=name)
            elif spec.required:
                raise InputError(f"missing required input {name!r} ({spec.type})", name=name)
            else:
                # a copy, so that a step mutating a list default cannot change later runs
                result[name] = validate_value(spec, copy.deepcopy(spec.default), name=name)
        except InputError as exc:
            errors.append(exc)
    if errors:
        raise combined(errors)
    return result


def combined(errors: Sequence[InputError]) -> InputError:
    """One error for several bad inputs: the single error itself, or one naming them all
    (``name`` of the first, every hint). Errors of another kind (too large: 413) go alone."""
    first = errors[0]
    if len(errors) == 1 or any(type(e) is not InputError for e in errors):
        return next((e for e in errors if type(e) is not InputError), first)
    message = f"{len(errors)} bad inputs: " + "; ".join(e.message for e in errors)
    hints = "; ".join(e.hint for e in errors if e.hint)
    return InputError(message, name=first.name, hint=hints or None)


__all__ = ["combined", "validate_inputs", "validate_value"]
