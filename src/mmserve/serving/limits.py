"""Checking what a request carries against the configured limits, before any work starts.

The engine validates types and declared bounds; this module adds what only a server must
care about, with the limits of ``server.limits``:

* images are decoded here (off the event loop) with the pixel count read from the header
  *before* the pixels are decoded, so a decompression bomb costs nothing (413);
* texts: at most ``max_text_chars`` characters (413), no NUL characters and no lone UTF-16
  surrogates (422) — both break tokenizers and stores far from the input that caused them;
* lists: at most ``max_items`` items (413);
* strings are never read as paths or fetched as URLs: an image given as a URL is refused
  with a message saying to send the bytes.

Every error is an :class:`~mmserve.errors.InputError` naming the input.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from PIL.Image import Image

from mmserve.config import LimitsConfig
from mmserve.errors import InputError, InputTooLargeError
from mmserve.media import base64_image_bytes, decode_image
from mmserve.workflow import Workflow
from mmserve.workflow.spec import InputSpec

_URL_PREFIXES = ("http://", "https://", "ftp://", "file://", "s3://", "gs://")


def check_text(value: str, *, name: str, limits: LimitsConfig) -> str:
    """``value`` if it is a text the server accepts; else an error naming ``name``."""
    if len(value) > limits.max_text_chars:
        raise InputTooLargeError(
            f"input {name!r}: the text has {len(value)} characters, over the limit of "
            f"{limits.max_text_chars} (server.limits.max_text_chars)",
            name=name,
        )
    position = value.find("\x00")
    if position >= 0:
        raise InputError(
            f"input {name!r}: the text contains a NUL character at position {position}",
            name=name,
            hint="remove control characters from the text",
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"input {name!r}: the text is not valid Unicode (a lone surrogate at position "
            f"{exc.start})",
            name=name,
        ) from exc
    return value


def check_items(value: list[Any], *, name: str, limits: LimitsConfig) -> None:
    if len(value) > limits.max_items:
        raise InputTooLargeError(
            f"input {name!r}: {len(value)} items, over the limit of {limits.max_items} "
            "(server.limits.max_items)",
            name=name,
        )


def image_bytes(value: Any, *, name: str) -> bytes:
    """The file bytes of an image sent as base64 text (JSON) or raw bytes (multipart)."""
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise InputError(
            f"input {name!r}: expected an image as base64 text, got {type(value).__name__}",
            name=name,
        )
    text = value.strip()
    if text.lower().startswith(_URL_PREFIXES):
        raise InputError(
            f"input {name!r}: the server does not fetch URLs; send the image itself",
            name=name,
            hint="base64-encode the image file into the JSON, or upload it as multipart",
        )
    return base64_image_bytes(text, name)


def decode_limited(data: bytes, *, name: str, limits: LimitsConfig) -> Image:
    """Decode image file bytes within ``limits`` (blocking: call it off the event loop)."""
    return decode_image(
        data, name=name, max_pixels=limits.max_image_pixels, max_bytes=limits.max_body_bytes
    )


def load_image(value: Any, *, name: str, limits: LimitsConfig) -> Image:
    """Decode one image input, base64 text or bytes (blocking)."""
    return decode_limited(image_bytes(value, name=name), name=name, limits=limits)


def _check_value(spec: InputSpec | None, value: Any, *, name: str, limits: LimitsConfig) -> Any:
    if isinstance(value, list):
        check_items(value, name=name, limits=limits)
        item_spec = spec.items if spec is not None and spec.type == "array" else None
        return [
            _check_value(item_spec, item, name=f"{name}[{n}]", limits=limits)
            for n, item in enumerate(value)
        ]
    if spec is not None and spec.type == "image" and isinstance(value, str | bytes):
        return load_image(value, name=name, limits=limits)
    if isinstance(value, str):
        return check_text(value, name=name, limits=limits)
    if isinstance(value, dict):
        check_items(list(value), name=name, limits=limits)
        return {
            key: _check_value(None, item, name=f"{name}.{key}", limits=limits)
            for key, item in value.items()
        }
    return value


def check_inputs_sync(
    workflow: Workflow, inputs: Mapping[str, Any], limits: LimitsConfig
) -> dict[str, Any]:
    """The inputs with images decoded and every value checked against ``limits``.

    Unknown inputs are checked too and passed on: the engine then names them as unexpected.
    """
    specs = workflow.spec.inputs
    return {
        name: _check_value(specs.get(name), value, name=name, limits=limits)
        for name, value in inputs.items()
    }


async def check_inputs(
    workflow: Workflow, inputs: Mapping[str, Any], limits: LimitsConfig
) -> dict[str, Any]:
    """:func:`check_inputs_sync` in a thread: decoding images must not stall other requests."""
    return await asyncio.to_thread(check_inputs_sync, workflow, inputs, limits)


__all__ = [
    "check_inputs",
    "check_inputs_sync",
    "check_items",
    "check_text",
    "decode_limited",
    "image_bytes",
    "load_image",
]
