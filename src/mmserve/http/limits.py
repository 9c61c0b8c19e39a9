"""Checking what a request carries against the configured limits, before any work starts.

The engine validates types and declared bounds; this module adds what only a server must
care about, with the limits of ``server.limits``:

* images are decoded here (off the event loop) once every image of the request passed its
  header checks: pixels, longest side and aspect ratio of each, and the pixels of all of them
  together (``max_request_pixels``), so neither a decompression bomb, a thin strip nor a
  request of many big images costs anything before it is refused (413);
* JSON nesting and size: see :mod:`mmserve.http.middleware.json_shape` (:func:`json_limits`);
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
from dataclasses import dataclass
from typing import Any

from PIL.Image import Image

from mmserve.config import LimitsConfig
from mmserve.errors import InputError, InputTooLargeError
from mmserve.http.middleware.json_shape import JsonLimits
from mmserve.media import ImageLimits, base64_image_bytes, image_size
from mmserve.media.deferred import open_upload
from mmserve.workflow import Workflow
from mmserve.workflow.language.spec import InputSpec

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


def image_limits(limits: LimitsConfig) -> ImageLimits:
    """The per-image limits of ``server.limits``."""
    return ImageLimits(
        max_pixels=limits.max_image_pixels,
        max_bytes=limits.max_body_bytes,
        max_side=limits.max_image_side,
        max_aspect_ratio=limits.max_image_aspect_ratio,
        keys="server.limits",
    )


def json_limits(limits: LimitsConfig) -> JsonLimits:
    """The JSON shape limits of ``server.limits``."""
    return JsonLimits(max_depth=limits.max_json_depth, max_nodes=limits.max_json_nodes)


@dataclass(frozen=True)
class PendingImage:
    """An image whose header passed the checks, not yet decoded."""

    data: bytes
    name: str
    pixels: int


def pending_image(value: Any, *, name: str, limits: LimitsConfig) -> PendingImage:
    """An image input (base64 text or bytes) with its header checked, nothing decoded."""
    data = image_bytes(value, name=name)
    width, height = image_size(data, name=name, max_bytes=limits.max_body_bytes)
    image_limits(limits).check_size(width, height, name=name)
    return PendingImage(data=data, name=name, pixels=width * height)


def check_pixel_budget(images: list[PendingImage], limits: LimitsConfig) -> None:
    """Refuse a request whose images together have more than ``max_request_pixels``."""
    total = sum(image.pixels for image in images)
    if total > limits.max_request_pixels:
        raise InputTooLargeError(
            f"the request's {len(images)} images have {total} pixels together, over the limit "
            f"of {limits.max_request_pixels} (server.limits.max_request_pixels)",
            name=images[0].name,
            hint="send fewer or smaller images per request",
        )


def decode_pending(image: PendingImage, limits: LimitsConfig) -> Image:
    """Decode an image whose header passed (blocking: call it off the event loop): upright,
    and a large JPEG only to a preview, its full pixels on demand
    (:mod:`mmserve.media.deferred`)."""
    return open_upload(image.data, name=image.name, limits=image_limits(limits))


def load_image(value: Any, *, name: str, limits: LimitsConfig) -> Image:
    """Decode one image input, base64 text or bytes, alone in its request (blocking)."""
    pending = pending_image(value, name=name, limits=limits)
    check_pixel_budget([pending], limits)
    return decode_pending(pending, limits)


def _check_value(
    spec: InputSpec | None,
    value: Any,
    *,
    name: str,
    limits: LimitsConfig,
    images: list[PendingImage],
) -> Any:
    if isinstance(value, list):
        check_items(value, name=name, limits=limits)
        item_spec = spec.items if spec is not None and spec.type == "array" else None
        return [
            _check_value(item_spec, item, name=f"{name}[{n}]", limits=limits, images=images)
            for n, item in enumerate(value)
        ]
    if spec is not None and spec.type == "image" and isinstance(value, str | bytes):
        images.append(pending_image(value, name=name, limits=limits))
        return images[-1]
    if isinstance(value, str):
        return check_text(value, name=name, limits=limits)
    if isinstance(value, dict):
        check_items(list(value), name=name, limits=limits)
        return {
            key: _check_value(None, item, name=f"{name}.{key}", limits=limits, images=images)
            for key, item in value.items()
        }
    return value


def _decoded(value: Any, limits: LimitsConfig) -> Any:
    """``value`` with its pending images decoded (they sit at the top or in lists)."""
    if isinstance(value, PendingImage):
        return decode_pending(value, limits)
    if isinstance(value, list):
        return [_decoded(item, limits) for item in value]
    return value


def check_inputs_sync(
    workflow: Workflow, inputs: Mapping[str, Any], limits: LimitsConfig
) -> dict[str, Any]:
    """The inputs with images decoded and every value checked against ``limits``.

    Every image's header is checked, and the pixel budget of all of them, before the first
    is decoded. Unknown inputs are checked too and passed on: the engine then names them as
    unexpected.
    """
    specs = workflow.spec.inputs
    images: list[PendingImage] = []
    checked = {
        name: _check_value(specs.get(name), value, name=name, limits=limits, images=images)
        for name, value in inputs.items()
    }
    if images:
        check_pixel_budget(images, limits)
    return {name: _decoded(value, limits) for name, value in checked.items()}


async def check_inputs(
    workflow: Workflow, inputs: Mapping[str, Any], limits: LimitsConfig
) -> dict[str, Any]:
    """:func:`check_inputs_sync` in a thread: decoding images must not stall other requests."""
    return await asyncio.to_thread(check_inputs_sync, workflow, inputs, limits)


__all__ = [
    "check_inputs",
    "check_inputs_sync",
    "check_items",
    "check_pixel_budget",
    "check_text",
    "decode_pending",
    "image_bytes",
    "image_limits",
    "json_limits",
    "load_image",
    "pending_image",
]
