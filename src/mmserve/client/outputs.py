"""Images in workflow answers: decoding them by the output schema, writing them as files.

A workflow output of type image travels as base64 PNG text, and the workflow's output JSON
Schema marks it (``contentEncoding: base64``, ``contentMediaType: image/png``), also inside
lists, optional values and nested objects. :func:`decode_outputs` turns exactly those values
into PIL images, driven by the schema, never by guessing from the text. :func:`write_images`
saves every image of a run's outputs as a PNG file and puts the file's path in its place
(``mmserve run --output-dir``).
"""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path
from typing import Any

from mmserve.client.errors import InputError, ServingError

_MAX_DEPTH = 32


def is_png_schema(schema: dict[str, Any]) -> bool:
    """True for the schema of a base64 PNG value (an image output)."""
    return (
        schema.get("contentEncoding") == "base64"
        and str(schema.get("contentMediaType", "")).lower() == "image/png"
    )


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = defs.get(ref.removeprefix("#/$defs/"))
        return target if isinstance(target, dict) else {}
    return schema


def _decode_png(text: str, where: str) -> Any:
    from PIL import Image  # deferred: Pillow, only when images are handled

    try:
        image = Image.open(io.BytesIO(base64.b64decode(text, validate=True)))
        image.load()
    except (binascii.Error, ValueError, OSError) as exc:
        raise ServingError(f"the server's output {where!r} is not a base64 PNG: {exc}") from exc
    return image


def _decode(
    value: Any, schema: dict[str, Any], defs: dict[str, Any], where: str, depth: int
) -> Any:
    schema = _resolve(schema, defs)
    if value is None or depth > _MAX_DEPTH:
        return value
    if isinstance(value, str) and is_png_schema(schema):
        return _decode_png(value, where)
    for option in schema.get("anyOf", []) or schema.get("oneOf", []):
        if isinstance(option, dict) and _resolve(option, defs).get("type") != "null":
            value = _decode(value, option, defs, where, depth + 1)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [
            _decode(item, schema["items"], defs, f"{where}[{index}]", depth + 1)
            for index, item in enumerate(value)
        ]
    properties = schema.get("properties")
    if isinstance(value, dict) and isinstance(properties, dict):
        return {
            key: _decode(item, properties.get(key, {}), defs, f"{where}.{key}", depth + 1)
            for key, item in value.items()
        }
    return value


def decode_outputs(outputs: dict[str, Any], output_schema: dict[str, Any] | None) -> dict[str, Any]:
    """``outputs`` with every value the schema marks as a base64 PNG decoded to a PIL image."""
    if not output_schema:
        return outputs
    defs = output_schema.get("$defs", {})
    properties = output_schema.get("properties", {})
    return {
        name: _decode(value, properties.get(name, {}), defs, name, 0)
        for name, value in outputs.items()
    }


def write_images(outputs: dict[str, Any], directory: Path) -> dict[str, Any]:
    """Save every PIL image in ``outputs`` as ``DIR/<output>.png`` (``<output>-<index>.png``
    in a list, ``<output>-<key>.png`` in an object); the outputs with their paths in place."""
    from PIL import Image  # deferred: Pillow, only when images are handled

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the output folder {str(directory)!r}: {exc.strerror or exc}"
        ) from exc

    def write(value: Any, stem: str) -> Any:
        if isinstance(value, Image.Image):
            path = directory / f"{stem}.png"
            try:
                value.save(path, format="PNG")
            except OSError as exc:
                raise InputError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc
            return str(path)
        if isinstance(value, list):
            return [write(item, f"{stem}-{index}") for index, item in enumerate(value)]
        if isinstance(value, dict):
            return {key: write(item, f"{stem}-{_safe(key)}") for key, item in value.items()}
        return value

    return {name: write(value, _safe(name)) for name, value in outputs.items()}


def _safe(name: str) -> str:
    """A file-name-safe version of an output name or key."""
    return "".join(char if char.isalnum() or char in "-_." else "_" for char in str(name))


__all__ = ["decode_outputs", "is_png_schema", "write_images"]
