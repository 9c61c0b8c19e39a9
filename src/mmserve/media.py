"""Turning user-supplied bytes into images, safely.

Images arrive as raw bytes (CLI ``@file``, multipart uploads), base64 text (JSON), a
``pathlib.Path`` or a ready ``PIL.Image`` (Python callers in process). Strings are never
treated as paths or URLs: a remote caller must not make the server read files or fetch URLs.
The pixel count is checked from the header *before* pixels are decoded, so a decompression
bomb costs nothing. Every image is returned as RGB (CMYK, palette, 16-bit, alpha converted).
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from pathlib import Path
from typing import Annotated, Any

from PIL import Image as PILImage
from PIL import UnidentifiedImageError
from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

from mmserve.errors import InputError, InputTooLargeError

#: Defaults; the server's limits config overrides them.
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_IMAGE_BYTES = 32 * 1024 * 1024


def base64_image_bytes(text: str, name: str) -> bytes:
    """The bytes of an image sent as base64 text (a ``data:`` URL prefix is allowed)."""
    payload = text.strip()
    if payload.startswith("data:"):
        _, _, payload = payload.partition(",")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(
            f"input {name!r}: expected an image as base64 text, got text that is not base64",
            name=name,
            hint="send the image file's bytes base64-encoded, or upload it as multipart",
        ) from exc


def decode_image(
    data: bytes,
    *,
    name: str = "image",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
) -> PILImage.Image:
    """Decode image bytes to an RGB image, refusing oversized and corrupt data clearly."""
    if not data:
        raise InputError(f"input {name!r}: the image is empty (0 bytes)", name=name)
    if len(data) > max_bytes:
        raise InputTooLargeError(
            f"input {name!r}: the image is {len(data)} bytes, over the limit of {max_bytes}",
            name=name,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            image = PILImage.open(io.BytesIO(data))  # reads the header only
            width, height = image.size
            if width * height > max_pixels:
                raise InputTooLargeError(
                    f"input {name!r}: the image is {width}x{height} = {width * height} "
                    f"pixels, over the limit of {max_pixels}",
                    name=name,
                    hint="downscale the image before sending it",
                )
            image.load()
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
        raise InputTooLargeError(
            f"input {name!r}: the image has too many pixels ({exc})", name=name
        ) from exc
    except UnidentifiedImageError as exc:
        raise InputError(
            f"input {name!r}: the data is not an image in a known format",
            name=name,
            hint="send a PNG, JPEG, WebP, GIF, BMP or TIFF file",
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(
            f"input {name!r}: the image is corrupt or truncated ({exc})", name=name
        ) from exc
    return to_rgb(image)


def to_rgb(image: PILImage.Image) -> PILImage.Image:
    """RGB copy of any PIL image (16-bit, CMYK, palette and alpha included)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 256).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = PILImage.new("RGB", image.size, (255, 255, 255))
        rgba = image.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def coerce_image(
    value: Any, *, name: str = "image", max_pixels: int | None = None
) -> PILImage.Image:
    """Accept a PIL image, bytes, base64 text or a Path (in-process only) as an RGB image.

    Encoded data is checked against ``max_pixels`` (default :data:`DEFAULT_MAX_PIXELS`)
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
    max_pixels = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    if isinstance(value, bytes | bytearray | memoryview):
        return decode_image(bytes(value), name=name, max_pixels=max_pixels)
    if isinstance(value, Path):
        try:
            data = value.read_bytes()
        except OSError as exc:
            raise InputError(
                f"input {name!r}: cannot read {str(value)!r}: {exc.strerror or exc}", name=name
            ) from exc
        return decode_image(data, name=name, max_pixels=max_pixels)
    if isinstance(value, str):
        return decode_image(base64_image_bytes(value, name), name=name, max_pixels=max_pixels)
    raise InputError(
        f"input {name!r}: expected an image (bytes, base64 text or PIL image), "
        f"got {type(value).__name__}",
        name=name,
    )


def encode_png_base64(image: PILImage.Image) -> str:
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
    "DEFAULT_MAX_IMAGE_BYTES",
    "DEFAULT_MAX_PIXELS",
    "ImageValue",
    "base64_image_bytes",
    "coerce_image",
    "decode_image",
    "encode_png_base64",
    "to_rgb",
]
