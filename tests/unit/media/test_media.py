from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from mmserve.errors import InputError, InputTooLargeError
from mmserve.media import coerce_image, decode_image


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def _png_header_only(width: int, height: int) -> bytes:
    """A small PNG file whose header claims width x height (a decompression bomb's shape)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def test_png_bytes_decode_to_rgb() -> None:
    image = decode_image(_png(Image.new("RGB", (4, 3), (255, 0, 0))))
    assert image.mode == "RGB" and image.size == (4, 3)
    assert image.getpixel((0, 0)) == (255, 0, 0)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "P", "CMYK", "I;16", "1"])
def test_any_mode_becomes_rgb(mode: str) -> None:
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    buffer = io.BytesIO()
    Image.new(mode, (5, 5)).save(buffer, format=fmt)
    assert decode_image(buffer.getvalue()).mode == "RGB"


def test_alpha_is_composited_on_white() -> None:
    image = decode_image(_png(Image.new("RGBA", (2, 2), (0, 0, 0, 0))))
    assert image.getpixel((0, 0)) == (255, 255, 255)


def test_pixel_bomb_is_refused_from_the_header_alone() -> None:
    with pytest.raises(InputTooLargeError, match="'photo'.*too many pixels"):
        decode_image(_png_header_only(20000, 20000), name="photo")
    with pytest.raises(InputTooLargeError, match="8000x8000 = 64000000 pixels"):
        decode_image(_png_header_only(8000, 8000), name="photo")
    with pytest.raises(InputTooLargeError, match="over the limit of 100"):
        decode_image(_png_header_only(11, 10), max_pixels=100)


def test_empty_random_and_truncated_bytes_are_clear_input_errors() -> None:
    with pytest.raises(InputError, match="empty"):
        decode_image(b"")
    with pytest.raises(InputError, match="not an image"):
        decode_image(b"\x00\x01garbage" * 10, name="photo")
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(jpeg, format="JPEG")
    with pytest.raises(InputError, match="corrupt or truncated|not an image"):
        decode_image(jpeg.getvalue()[:100])


def test_base64_text_and_data_urls_decode() -> None:
    data = _png(Image.new("RGB", (2, 2)))
    encoded = base64.b64encode(data).decode()
    assert coerce_image(encoded).size == (2, 2)
    assert coerce_image("data:image/png;base64," + encoded).size == (2, 2)


def test_strings_are_never_read_as_paths(tmp_path: Path) -> None:
    file = tmp_path / "x.png"
    file.write_bytes(_png(Image.new("RGB", (2, 2))))
    with pytest.raises(InputError, match="not base64"):
        coerce_image(str(file), name="image")
    assert coerce_image(file).size == (2, 2)  # a Path object is an in-process caller's choice


def test_unreadable_path_and_wrong_type_name_the_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="input 'photo': cannot read"):
        coerce_image(tmp_path / "missing.png", name="photo")
    with pytest.raises(InputError, match="got int"):
        coerce_image(42, name="photo")


def test_decoded_images_are_checked_only_against_an_explicit_limit() -> None:
    image = Image.new("RGB", (11, 10))
    assert coerce_image(image).size == (11, 10)  # the server that decoded it set the limit
    with pytest.raises(InputTooLargeError, match="110 pixels, over 100"):
        coerce_image(image, max_pixels=100)
