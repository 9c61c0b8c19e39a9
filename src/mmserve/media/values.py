"""Images as values: any accepted form coerced to an RGB image, and serialised back.

:func:`coerce_image` accepts a PIL image, bytes, base64 text or a ``Path`` (in process only)
and decodes as the server's door does (:mod:`mmserve.media.deferred`); :data:`ImageValue` is
the pydantic field type steps and workflows use for images; an image decoded from a stored
file is serialised as that file (:func:`with_file_bytes`).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Annotated, Any

from PIL import Image as PILImage
from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

from mmserve.errors import InputError, InputTooLargeError
from mmserve.media.decode import DEFAULT_MAX_PIXELS, ImageLimits, base64_image_bytes, to_rgb
from mmserve.media.deferred import open_upload


def coerce_image(
    value: Any, *, name: str = "image", max_pixels: int | None = None
) -> PILImage.Image:
    """Accept a PIL image, bytes, base64 text or a Path (in-process only) as an RGB image.

    Encoded data is decoded as the server decodes uploads (upright by its EXIF orientation, a
    large JPEG to a preview with its full pixels on demand: :mod:`mmserve.media.deferred`),
    checked against ``max_pixels`` (default :data:`DEFAULT_MAX_PIXELS`)
    before decoding. An image that is already decoded is checked only when ``max_pixels`` is
    given: its memory is spent, and whoever decoded it (the server) applied its own limit.
    """
    if isinstance(value, PILImage.Image):
        width, height = value.size
        if max_pixels is not None and width * height > max_pixels:
            raise InputTooLargeError(
                f"input {name!r}: the image has {width * height} pixels, over {max_pixels}",
                name=name,
            )
        return to_rgb(value)
    limits = ImageLimits(max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels)
    if isinstance(value, bytes | bytearray | memoryview):
        return open_upload(bytes(value), name=name, limits=limits)
    if isinstance(value, Path):
        try:
            data = value.read_bytes()
        except OSError as exc:
            raise InputError(
                f"input {name!r}: cannot read {str(value)!r}: {exc.strerror or exc}", name=name
            ) from exc
        return open_upload(data, name=name, limits=limits)
    if isinstance(value, str):
        return open_upload(base64_image_bytes(value, name), name=name, limits=limits)
    raise InputError(
        f"input {name!r}: expected an image (bytes, base64 text or PIL image), "
        f"got {type(value).__name__}",
        name=name,
    )


#: Set on an image decoded from a file kept elsewhere (a stored image): the file's bytes,
#: which :func:`encode_png_base64` then returns as they are instead of re-encoding the pixels.
FILE_BYTES_ATTR = "mmserve_file_bytes"


def with_file_bytes(image: PILImage.Image, data: bytes) -> PILImage.Image:
    """Mark ``image`` (decoded from ``data``) to be serialised as ``data`` itself."""
    setattr(image, FILE_BYTES_ATTR, data)
    return image


def file_bytes(image: PILImage.Image) -> bytes | None:
    """The file ``image`` was decoded from, when it was marked by :func:`with_file_bytes`."""
    data = getattr(image, FILE_BYTES_ATTR, None)
    return data if isinstance(data, bytes) else None


def encode_png_base64(image: PILImage.Image) -> str:
    """Base64 of the image's own file when known (a stored image), else of a PNG encoding."""
    data = file_bytes(image)
    if data is not None:
        return base64.b64encode(data).decode("ascii")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _validate(value: Any) -> PILImage.Image:
    try:
        return coerce_image(value)
    except InputError as exc:
        # pydantic turns ValueError into a validation error carrying this message
        raise ValueError(exc.message) from exc


#: A pydantic field type for images: validated from bytes/base64/PIL, serialised as base64 PNG
#: (its JSON Schema says ``image/*`` for inputs and ``image/png`` for outputs).
ImageValue = Annotated[
    PILImage.Image,
    PlainValidator(_validate),
    PlainSerializer(encode_png_base64, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "contentEncoding": "base64",
            "contentMediaType": "image/*",
            "description": "An image file (PNG, JPEG, ...), base64-encoded.",
        },
        mode="validation",
    ),
    # Images in answers are always PNG (see encode_png_base64): clients decode them by this.
    WithJsonSchema(
        {
            "type": "string",
            "contentEncoding": "base64",
            "contentMediaType": "image/png",
            "description": "A PNG image, base64-encoded.",
        },
        mode="serialization",
    ),
]

__all__ = [
    "FILE_BYTES_ATTR",
    "ImageValue",
    "coerce_image",
    "encode_png_base64",
    "file_bytes",
    "with_file_bytes",
]
