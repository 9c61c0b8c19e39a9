"""Synthetic sample inputs the built-in roles declare as ``sample_items`` (for warm-up)."""

from __future__ import annotations

from PIL import Image, ImageDraw


def sample_image(size: int = 64) -> Image.Image:
    """A small synthetic RGB picture: a blue sky over green ground, a red disc in the middle
    (made with PIL, no file; enough structure for any image model's preprocessing)."""
    image = Image.new("RGB", (size, size), (90, 150, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, size * 2 // 3, size, size), fill=(60, 160, 70))
    draw.ellipse((size // 3, size // 4, size * 2 // 3, size * 7 // 12), fill=(220, 40, 40))
    return image


__all__ = ["sample_image"]
