"""Images reduced to what the model that receives them needs, before they leave the ingress.

Every image-reading backend here (CLIP, BLIP, ViLT) hands its images to a Hugging Face image
processor that resizes them to a few hundred pixels a side. A backend states that size as an
:class:`ImageInput` (``image_input``, read from its processor: :func:`image_input_of`), and the
gateways reduce an image to it before the model call: served, the pixels that cross to the
model replica are the model's, not the upload's (a 4000x3000 photo is 36 MB of pixels; CLIP's
input is 150 KB).

The reduction does the processor's own geometric step with the processor's resampling filter:

* ``shortest_edge`` (CLIP): the shortest edge to that size, aspect kept (the same arithmetic
  as ``transformers``), then the processor's centre crop. The processor's resize and crop of
  the result are then no-ops, so a model sees the very pixels the direct call would give it
  for the same source image;
* ``height`` x ``width`` (BLIP): resized to exactly that size, as the processor does;
* ``shortest_edge`` with ``longest_edge`` and ``size_divisor`` (ViLT): ViLT's arithmetic
  (the longest edge capped, both rounded down to the divisor);
* a size the processor computes otherwise (``exact=False``), or an exact size the processor
  would not leave as it is (its resize of the reduced size gives another size), is only
  approached from above: the image is reduced, aspect kept, to no less than the processor will
  use, and the processor finishes.

The source of the reduction is the smallest decode of the upload that covers the model's
input: its JPEG draft-mode preview, a larger draft, or the full image
(:meth:`~mmserve.media.deferred.DeferredImage.covering`). Images that are not
model inputs (what ``index`` stores, what ``edit`` edits, what a step returns) are never
reduced: only the item sent to the model is.

Raw pixels rather than an encoding cross the process boundary: ``python -m
benchmarks.image_path`` measured a CLIP-sized (224x224) image at 0.15 MB and 0.2 ms to
pickle, against 4-40 ms to encode it as PNG (and lossy JPEG would change the model's input).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from PIL import Image as PILImage

from mmserve.media.deferred import DeferredImage


@dataclass(frozen=True)
class ImageInput:
    """The input size an image model reads, as its image processor makes it.

    Either ``shortest_edge`` (aspect kept; ``longest_edge`` caps the other side) or
    ``height`` and ``width`` (resized to exactly that); ``crop`` is the processor's centre
    crop ``(height, width)`` after resizing; ``resample`` its PIL filter. ``exact`` says the
    processor does nothing more to the size than this (the reduction then is its own)."""

    shortest_edge: int | None = None
    longest_edge: int | None = None
    height: int | None = None
    width: int | None = None
    crop: tuple[int, int] | None = None
    size_divisor: int | None = None
    resample: int = PILImage.Resampling.BICUBIC
    exact: bool = True

    def __post_init__(self) -> None:
        squash = self.height is not None and self.width is not None
        if (self.shortest_edge is None) == (not squash):
            raise ValueError("ImageInput needs shortest_edge, or height and width (not both)")

    def resized(self, width: int, height: int) -> tuple[int, int]:
        """``(width, height)`` a ``width`` x ``height`` image is resized to, before any crop."""
        if self.height is not None and self.width is not None:
            return self.width, self.height
        assert self.shortest_edge is not None
        if self.size_divisor is not None:
            return self._divisible(width, height, self.size_divisor)
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
        if self.longest_edge is not None and new_long > self.longest_edge:
            # never below what the processor uses: round the short side up
            new_short = math.ceil(self.longest_edge * short / long)
            new_long = self.longest_edge
        return (new_short, new_long) if width <= height else (new_long, new_short)

    def _divisible(self, width: int, height: int, divisor: int) -> tuple[int, int]:
        """ViLT's size (``transformers``' ``ViltImageProcessor``), as ``(width, height)``."""
        assert self.shortest_edge is not None
        scale = self.shortest_edge / min(width, height)
        if height < width:
            new_height, new_width = float(self.shortest_edge), scale * width
        else:
            new_height, new_width = scale * height, float(self.shortest_edge)
        longest = self.longest_edge
        if longest is not None and max(new_height, new_width) > longest:
            scale = longest / max(new_height, new_width)
            new_height, new_width = scale * new_height, scale * new_width
        rounded_height, rounded_width = int(new_height + 0.5), int(new_width + 0.5)
        return (rounded_width // divisor * divisor, rounded_height // divisor * divisor)


@runtime_checkable
class ReadsImages(Protocol):
    """A backend whose images go through an image processor: it states the input size."""

    @property
    def image_input(self) -> ImageInput | None: ...


def backend_image_input(backend: Any) -> ImageInput | None:
    """What ``backend`` states as its image input (``None``: it reads images as they are)."""
    return backend.image_input if isinstance(backend, ReadsImages) else None


def image_input_of(processor: Any, **overrides: Any) -> ImageInput | None:
    """The :class:`ImageInput` of a Hugging Face image processor (``None`` when it does not
    resize, or resizes in a way this module does not know: such images are left alone)."""
    if not getattr(processor, "do_resize", False):
        return None
    size = getattr(processor, "size", None)
    fields: dict[str, Any] = {}
    shortest = _get(size, "shortest_edge")
    height, width = _get(size, "height"), _get(size, "width")
    if shortest:
        fields = {"shortest_edge": int(shortest)}
        longest = _get(size, "longest_edge")
        if longest:  # transformers' own arithmetic differs here: approach from above
            fields |= {"longest_edge": int(longest), "exact": False}
    elif height and width:
        fields = {"height": int(height), "width": int(width)}
    else:
        return None
    crop = getattr(processor, "crop_size", None)
    if getattr(processor, "do_center_crop", False) and _get(crop, "height"):
        fields["crop"] = (int(_get(crop, "height")), int(_get(crop, "width")))
    resample = getattr(processor, "resample", None)
    if isinstance(resample, int):
        fields["resample"] = int(resample)
    return ImageInput(**(fields | overrides))


def _get(size: Any, key: str) -> Any:
    if size is None:
        return None
    if isinstance(size, dict):
        return size.get(key)
    return getattr(size, key, None)


def for_model(image: PILImage.Image, needs: ImageInput) -> PILImage.Image:
    """``image`` as the model that ``needs`` it reads it (see the module docstring). Blocking
    (a resize, and a decode when the preview is too small): run it off the event loop."""
    width, height = image.size
    target = needs.resized(width, height)
    if min(target) < 1:
        return image
    crop = needs.crop[::-1] if needs.crop is not None else None
    final = crop if crop is not None and _covers(target, crop) else target
    if not needs.exact or needs.resized(*final) != final:
        # the processor will resize whatever it gets: give it no less than it will use
        scale = max(target[0] / width, target[1] / height)
        if scale >= 1:
            return image
        target = (math.ceil(width * scale), math.ceil(height * scale))
        crop = None
    source: PILImage.Image = image
    if isinstance(image, DeferredImage):
        source = image.covering(*target)
    if source.mode != "RGB":
        source = source.convert("RGB")
    reduced = source.resize(target, resample=needs.resample)
    if needs.crop is not None and crop is not None:
        reduced = _centre_crop(reduced, needs.crop)
    return reduced


def _covers(size: tuple[int, int], target: tuple[int, int]) -> bool:
    return size[0] >= target[0] and size[1] >= target[1]


def _centre_crop(image: PILImage.Image, crop: tuple[int, int]) -> PILImage.Image:
    """The processor's centre crop (``transformers``' arithmetic; padded when smaller)."""
    crop_height, crop_width = crop
    width, height = image.size
    if width < crop_width or height < crop_height:
        return image  # the processor pads such an image; leave that to it
    top = (height - crop_height) // 2
    left = (width - crop_width) // 2
    return image.crop((left, top, left + crop_width, top + crop_height))


__all__ = ["ImageInput", "ReadsImages", "backend_image_input", "for_model", "image_input_of"]
