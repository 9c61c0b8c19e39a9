"""Turning user-supplied bytes into images, safely.

Images arrive as raw bytes (CLI ``@file``, multipart uploads), base64 text (JSON), a
``pathlib.Path`` or a ready ``PIL.Image`` (Python callers in process). Strings are never
treated as paths or URLs: a remote caller must not make the server read files or fetch URLs.
The pixel count, the longest side and the aspect ratio are checked from the header *before*
pixels are decoded, so a decompression bomb (or a thin 8000x2 strip that a processor scales
up to thousands of times its size) costs nothing. Every image is returned as RGB (CMYK,
palette, 16-bit of either byte order, alpha converted).
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from mmserve.errors import InputError, InputTooLargeError

#: Defaults; the server's limits config overrides them.
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_IMAGE_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_IMAGE_SIDE = 16_384
DEFAULT_MAX_ASPECT_RATIO = 20.0


@dataclass(frozen=True)
class ImageLimits:
    """What one image may be, checked from its header before its pixels are decoded; the
    ``keys`` name the config keys the messages cite (the server's ``server.limits``)."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    max_side: int = DEFAULT_MAX_IMAGE_SIDE
    max_aspect_ratio: float = DEFAULT_MAX_ASPECT_RATIO
    keys: str = ""

    def key(self, name: str) -> str:
        return f" ({self.keys}.{name})" if self.keys else ""

    def check_size(self, width: int, height: int, *, name: str) -> None:
        """Refuse a ``width`` x ``height`` image over these limits (413)."""
        pixels = width * height
        if pixels > self.max_pixels:
            raise InputTooLargeError(
                f"input {name!r}: the image is {width}x{height} = {pixels} pixels, over the "
                f"limit of {self.max_pixels}{self.key('max_image_pixels')}",
                name=name,
                hint="downscale the image before sending it",
            )
        if max(width, height) > self.max_side:
            raise InputTooLargeError(
                f"input {name!r}: the image is {width}x{height}, its longest side is over the "
                f"limit of {self.max_side}{self.key('max_image_side')}",
                name=name,
                hint="downscale the image before sending it",
            )
        ratio = max(width, height) / max(min(width, height), 1)
        if ratio > self.max_aspect_ratio:
            raise InputTooLargeError(
                f"input {name!r}: the image is {width}x{height}, an aspect ratio of "
                f"{ratio:.0f}:1, over the limit of {self.max_aspect_ratio:g}:1"
                f"{self.key('max_image_aspect_ratio')}",
                name=name,
                hint="crop or pad the image to a less extreme shape",
            )


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


def image_size(
    data: bytes, *, name: str = "image", max_bytes: int | None = None
) -> tuple[int, int]:
    """``(width, height)`` of encoded image ``data``, read from its header only."""
    with reading_image(name):
        check_image_bytes(data, name=name, max_bytes=max_bytes)
        with PILImage.open(io.BytesIO(data)) as image:
            width, height = image.size
            return int(width), int(height)


def decode_image(
    data: bytes,
    *,
    name: str = "image",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    limits: ImageLimits | None = None,
) -> PILImage.Image:
    """Decode image bytes to an RGB image, refusing oversized and corrupt data clearly.

    ``limits`` (when given) replaces ``max_pixels`` and ``max_bytes``."""
    if limits is None:
        limits = ImageLimits(max_pixels=max_pixels, max_bytes=max_bytes)
    with reading_image(name):
        check_image_bytes(data, name=name, max_bytes=limits.max_bytes)
        image = PILImage.open(io.BytesIO(data))  # reads the header only
        width, height = image.size
        limits.check_size(width, height, name=name)
        image.load()
        return to_rgb(image)
    raise AssertionError("unreachable")  # reading_image re-raises every error


def check_image_bytes(data: bytes, *, name: str, max_bytes: int | None) -> None:
    if not data:
        raise InputError(f"input {name!r}: the image is empty (0 bytes)", name=name)
    if max_bytes is not None and len(data) > max_bytes:
        raise InputTooLargeError(
            f"input {name!r}: the image is {len(data)} bytes, over the limit of {max_bytes}",
            name=name,
        )


@contextmanager
def reading_image(name: str) -> Iterator[None]:
    """Image library errors while reading ``name`` as :class:`InputError` (413 or 422)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            yield
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
    except (OSError, SyntaxError, ValueError, TypeError) as exc:
        raise InputError(
            f"input {name!r}: the image is corrupt or truncated, or in a mode it cannot "
            f"read ({exc})",
            name=name,
        ) from exc


def to_rgb(image: PILImage.Image) -> PILImage.Image:
    """RGB copy of any PIL image (16-bit, CMYK, palette and alpha included)."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16"):
        image = image.convert("I")  # 16-bit of either byte order -> 32-bit, then as below
    if image.mode == "I":
        image = image.point(lambda v: v / 256).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = PILImage.new("RGB", image.size, (255, 255, 255))
        rgba = image.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


__all__ = [
    "DEFAULT_MAX_ASPECT_RATIO",
    "DEFAULT_MAX_IMAGE_BYTES",
    "DEFAULT_MAX_IMAGE_SIDE",
    "DEFAULT_MAX_PIXELS",
    "ImageLimits",
    "base64_image_bytes",
    "check_image_bytes",
    "decode_image",
    "image_size",
    "reading_image",
    "to_rgb",
]
