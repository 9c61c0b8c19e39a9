"""Synthetic photos at camera sizes, JPEG-encoded (the image path benchmark and its tests)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

#: EXIF tag of the orientation; 6 = the camera was turned: rotate 90 degrees clockwise to view.
ORIENTATION = 0x0112


def synthetic_photo(width: int, height: int, *, seed: int = 0) -> Image.Image:
    """A photo-like RGB image: smooth gradients, a few sharp-edged shapes, fine texture and
    sensor noise (so that resampling and JPEG coding both matter). Drawn at a quarter of the
    size and scaled up, with full-resolution grain tiled on top (cheap at 12 megapixels)."""
    rng = np.random.default_rng(seed)
    small_w, small_h = max(width // 4, 8), max(height // 4, 8)
    y, x = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    u, v = x / small_w, y / small_h
    red = 200 * u + 40 * np.sin(9 * v + seed)
    green = 180 * v + 50 * np.cos(42 * u * v)
    blue = 128 + 90 * np.sin(u * 60) * np.cos(v * 45)
    pixels = np.stack([red, green, blue], axis=-1)
    for _ in range(6):  # discs of flat colour
        cx, cy, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.2)
        inside = (u - cx) ** 2 + ((v - cy) * small_h / small_w) ** 2 < r**2
        pixels[inside] = rng.uniform(0, 255, 3)
    small = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    image = np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    grain = rng.integers(-2, 3, (min(height, 97), min(width, 89), 3), dtype=np.int16)
    reps = (-(-height // grain.shape[0]), -(-width // grain.shape[1]), 1)
    image = image + np.tile(grain, reps)[:height, :width]
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def jpeg(image: Image.Image, *, quality: int = 90, orientation: int | None = None) -> bytes:
    """``image`` as JPEG bytes, with an EXIF orientation tag when given."""
    buffer = io.BytesIO()
    if orientation is None:
        image.save(buffer, format="JPEG", quality=quality)
    else:
        exif = Image.Exif()
        exif[ORIENTATION] = orientation
        image.save(buffer, format="JPEG", quality=quality, exif=exif.tobytes())
    return buffer.getvalue()
