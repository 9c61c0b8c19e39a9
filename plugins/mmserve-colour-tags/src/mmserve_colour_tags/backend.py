"""``colour-tagger``: a weight-free backend of the ``image_tagger`` role.

Its ``source`` is the name of a palette (``basic``, ``grey``), not a Hugging Face id: the
backend says what its source means (``check_source``), so ``mmserve serve``'s preflight and
the replicas accept it with no network and no model files.

* ``tag``: every pixel of a 32x32 thumbnail goes to its nearest palette colour; the tags are
  the colours covering the largest shares of the image.
* ``fingerprint``: a difference hash (dHash) -- one bit per pair of horizontally adjacent
  pixels of a grey thumbnail, set where brightness increases -- over the whole batch at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from PIL.Image import Image, Resampling

from mmserve.errors import ModelLoadError
from mmserve.models.spec import ModelSpec
from mmserve.registry import register_model
from mmserve_colour_tags.role import FingerprintItem, Tag, TagItem

PALETTES: dict[str, dict[str, tuple[int, int, int]]] = {
    "basic": {
        "black": (0, 0, 0),
        "white": (255, 255, 255),
        "gray": (128, 128, 128),
        "red": (220, 30, 30),
        "green": (40, 170, 60),
        "blue": (30, 60, 220),
        "yellow": (240, 220, 40),
        "orange": (245, 140, 30),
        "purple": (140, 50, 170),
        "pink": (245, 160, 200),
        "brown": (120, 75, 40),
    },
    "grey": {"black": (0, 0, 0), "gray": (128, 128, 128), "white": (255, 255, 255)},
}
_THUMB = 32


@register_model(
    "colour-tagger",
    roles=["image_tagger"],
    description="Weight-free image tagger: palette colour tags and a difference hash.",
)
class ColourTagger:
    """Tags images by palette colour and fingerprints them (see the module docstring)."""

    roles: ClassVar[frozenset[str]] = frozenset({"image_tagger"})

    @classmethod
    def check_source(cls, spec: ModelSpec) -> None:
        """The source must name a palette; nothing is downloaded."""
        if spec.source not in PALETTES:
            raise ModelLoadError(
                source=spec.source,
                reason="the colour-tagger backend takes a palette name as its source",
                hint=f"palettes: {', '.join(PALETTES)}",
            )

    def __init__(self, spec: ModelSpec) -> None:
        self.check_source(spec)
        self.spec = spec
        palette = PALETTES[spec.source]
        self._names = list(palette)
        self._rgb = np.array(list(palette.values()), dtype=np.float32)

    def tag(self, items: Sequence[TagItem]) -> list[list[Tag]]:
        """Each image's palette colours, largest share first (batched: one array op)."""
        if not items:
            return []
        thumbs = np.stack([_pixels(item.image.convert("RGB"), _THUMB, _THUMB) for item in items])
        pixels = thumbs.reshape(len(items), -1, 1, 3)
        nearest = ((pixels - self._rgb) ** 2).sum(axis=-1).argmin(axis=-1)  # (N, pixels)
        counts = np.stack([np.bincount(row, minlength=len(self._names)) for row in nearest])
        shares = counts / nearest.shape[1]
        return [self._tags(row, item) for row, item in zip(shares, items, strict=True)]

    def _tags(self, shares: np.ndarray, item: TagItem) -> list[Tag]:
        ranked = sorted(range(len(self._names)), key=lambda i: (-shares[i], i))
        return [
            Tag(name=self._names[i], share=round(float(shares[i]), 6))
            for i in ranked[: item.top_k]
            if shares[i] >= item.min_share
        ]

    def fingerprint(self, items: Sequence[FingerprintItem]) -> list[str]:
        """Each image's dHash as hex. One batch holds one hash size (the role's batch key)."""
        if not items:
            return []
        (size,) = {item.hash_size for item in items}
        grey = np.stack([_pixels(item.image.convert("L"), size + 1, size) for item in items])
        bits = (grey[:, :, 1:] > grey[:, :, :-1]).reshape(len(items), -1)
        return [_hex(row) for row in bits]


def _pixels(image: Image, width: int, height: int) -> np.ndarray:
    return np.asarray(image.resize((width, height), Resampling.BOX), dtype=np.float32)


def _hex(bits: np.ndarray) -> str:
    value = int("".join("1" if bit else "0" for bit in bits), 2)
    return f"{value:0{(len(bits) + 3) // 4}x}"


__all__ = ["PALETTES", "ColourTagger"]
