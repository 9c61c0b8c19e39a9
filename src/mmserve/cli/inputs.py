"""Parsing ``--input name=value`` pairs of ``mmserve run`` against a workflow's input schema.

``name=@path`` reads a file: raw bytes for image inputs, text otherwise. Typed inputs
(integer, number, boolean, array, object) are parsed as JSON; a value that does not parse is
passed on as text so that the engine's validation names the input and the expected type.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmserve.errors import InputError
from mmserve.workflow.language.input_values import combined

_JSON_TYPES = {"integer", "number", "boolean", "array", "object"}


def _is_image(schema: dict[str, Any]) -> bool:
    return str(schema.get("contentMediaType", "")).startswith("image/")


def _read(name: str, path: str, *, binary: bool) -> bytes | str:
    file = Path(path).expanduser()
    try:
        return file.read_bytes() if binary else file.read_text(encoding="utf-8")
    except IsADirectoryError as exc:
        raise InputError(f"input {name!r}: {path!r} is a folder, not a file", name=name) from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"input {name!r}: {path!r} is not UTF-8 text", name=name) from exc
    except OSError as exc:
        raise InputError(
            f"input {name!r}: cannot read {path!r}: {exc.strerror or exc}", name=name
        ) from exc


def parse_value(name: str, raw: str, schema: dict[str, Any] | None) -> Any:
    """One ``--input`` value, typed by the input's JSON schema (None: unknown input)."""
    schema = schema or {}
    image = _is_image(schema)
    if raw.startswith("@"):
        return _read(name, raw[1:], binary=image)
    if image:
        raise InputError(
            f"input {name!r} is an image: pass a file as {name}=@path/to/image.png", name=name
        )
    kind = schema.get("type")
    if kind in _JSON_TYPES:
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            if kind in ("array", "object"):
                raise InputError(
                    f"input {name!r} is {'a list' if kind == 'array' else 'an object'}: "
                    f"{raw[:60]!r} is not JSON",
                    name=name,
                    hint=_json_hint(name, raw, kind),
                ) from None
            return raw
    return raw


def _json_hint(name: str, raw: str, kind: str) -> str:
    if kind == "array":
        items = ", ".join(json.dumps(part.strip()) for part in raw.split(",") if part.strip())
        return f"write it as JSON in single quotes, e.g. --input '{name}=[{items}]'"
    return f"""write it as JSON in single quotes, e.g. --input '{name}={{"key": "value"}}'"""


def parse_inputs(pairs: list[str], input_schema: dict[str, Any]) -> dict[str, Any]:
    """``["k=v", ...]`` -> ``{k: typed v}``; raises InputError on malformed pairs."""
    properties: dict[str, Any] = input_schema.get("properties", {})
    inputs: dict[str, Any] = {}
    errors: list[InputError] = []
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        try:
            if not sep or not name:
                raise InputError(
                    f"--input {pair!r} is not of the form name=value", hint="e.g. --input top_k=3"
                )
            if name in inputs:
                raise InputError(f"input {name!r} is given twice", name=name)
            inputs[name] = parse_value(name, raw, properties.get(name))
        except InputError as exc:
            errors.append(exc)
    if errors:
        raise combined(errors)
    return inputs


__all__ = ["parse_inputs", "parse_value"]
