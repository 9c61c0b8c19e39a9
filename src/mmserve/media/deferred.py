"""Uploaded photos decoded once, small: JPEG draft mode, EXIF orientation, full pixels on demand.

A 12-megapixel phone photo is 36 MB of pixels, and every model here reads 224 to 640 pixels a
side. :func:`open_upload` (what the server's door uses) checks the header like
:func:`mmserve.media.decode_image`, then, for a JPEG much larger than any model input, decodes
it once with JPEG draft mode (libjpeg's DCT scaling by 1/2, 1/4 or 1/8, several times faster
than a full decode) to a *preview*: the smallest scale whose shortest edge is still at least
:data:`PREVIEW_MIN_EDGE` (CLIP's input; 1/8 for a 12-megapixel photo). Decoding the whole
entropy-coded stream also proves the file is not truncated or corrupt, so a bad upload is still
refused at the door (422). A model that needs more pixels than the preview has gets a draft
decode at the smallest scale that covers its input (:meth:`DeferredImage.covering`), decoded
once and kept, not the full image.

The value handed to the workflow is a :class:`DeferredImage`: a full-resolution RGB
``PIL.Image`` whose pixels are decoded from the upload's bytes the first time anything reads
them (a step that stores, edits or serialises the image sees every original pixel). A model
whose role reads images through an image processor gets the preview instead, reduced to the
model's input size (:mod:`mmserve.media.sizes`), so the full decode never happens for them.

EXIF orientation is applied to both (a photo taken in portrait is upright), as to every image
:func:`open_upload` returns.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image as PILImage
from PIL import ImageOps

from mmserve.media.decode import ImageLimits, check_image_bytes, decode_image, reading_image, to_rgb

#: The preview's shortest edge is at least this (CLIP's 224, the smallest input of the models
#: shipped): the door decodes at the smallest DCT scale that keeps it, the cheapest decode
#: that still reads the whole stream. A model needing more (BLIP's and ViLT's 384) gets a
#: larger draft on demand (:meth:`DeferredImage.covering`).
PREVIEW_MIN_EDGE = 224

#: libjpeg's DCT scales, largest reduction first.
_SCALES = (8, 4, 2)

#: EXIF orientations that swap width and height (rotations by 90 or 270 degrees).
_SWAPS = frozenset({5, 6, 7, 8})
_ORIENTATION = 0x0112


class DeferredImage(PILImage.Image):
    """A full-resolution RGB image decoded from ``source`` on first pixel access, with a
    smaller ``preview`` (same picture, same orientation) decoded already.

    It is a real ``PIL.Image``: every method that reads pixels loads them first. Pickling or
    copying it gives a plain, loaded ``PIL.Image``."""

    def __init__(
        self, source: bytes, size: tuple[int, int], preview: PILImage.Image, name: str
    ) -> None:
        super().__init__()
        self._mode = "RGB"
        self._size = size
        self.source = source
        self.preview = preview
        self._name = name
        #: draft decodes made on demand, by scale denominator (kept: each is made once)
        self._drafts: dict[int, PILImage.Image] = {}

    @property
    def decoded(self) -> bool:
        """Whether the full-resolution pixels have been decoded."""
        return self._im is not None

    def load(self) -> Any:
        if self._im is None:
            full = _oriented(decode_image(self.source, name=self._name, limits=_UNLIMITED))
            if full.size != self.size:  # the header said otherwise: refuse, do not guess
                raise ValueError(f"decoded {full.size}, expected {self.size}")
            self.im = full.im
        return super().load()

    def covering(self, width: int, height: int) -> PILImage.Image:
        """The smallest decode of this image (preview, a larger draft, or the full image),
        upright, that is at least ``width`` x ``height``."""
        if self.preview.size[0] >= width and self.preview.size[1] >= height:
            return self.preview
        if self._im is None:
            for scale in _SCALES:  # the first (smallest) draft that covers the size
                if self.size[0] // scale >= width and self.size[1] // scale >= height:
                    if scale not in self._drafts:
                        self._drafts[scale] = self._draft(scale)
                    found = self._drafts[scale]
                    if found.size[0] >= width and found.size[1] >= height:
                        return found
        self.load()
        return self

    def _draft(self, scale: int) -> PILImage.Image:
        """This image decoded at 1/``scale`` by JPEG draft mode, upright."""
        with reading_image(self._name):
            image = PILImage.open(io.BytesIO(self.source))
            # (width and height as stored: the orientation is applied after decoding)
            stored = image.size
            image.draft("RGB", (-(-stored[0] // scale), -(-stored[1] // scale)))
            image.load()
            return _oriented(image)
        raise AssertionError("unreachable")  # reading_image re-raises every error

    def __reduce_ex__(self, protocol: Any) -> Any:
        # a plain image with the same pixels (not this class: the other side needs no bytes)
        return (PILImage.frombytes, (self.mode, self.size, self.tobytes()))


#: The limits were checked from the header before the deferred image was made.
_UNLIMITED = ImageLimits(max_pixels=2**62, max_bytes=2**62, max_side=2**31, max_aspect_ratio=1e9)


def open_upload(
    data: bytes, *, name: str = "image", limits: ImageLimits | None = None
) -> PILImage.Image:
    """An uploaded image as RGB, upright (EXIF orientation applied), checked like
    :func:`~mmserve.media.decode_image`: a :class:`DeferredImage` for a large RGB JPEG, else
    the decoded image."""
    limits = limits or ImageLimits()
    with reading_image(name):
        check_image_bytes(data, name=name, max_bytes=limits.max_bytes)
        image = PILImage.open(io.BytesIO(data))  # reads the header only
        width, height = image.size
        limits.check_size(width, height, name=name)
        scale = min(width, height) // PREVIEW_MIN_EDGE
        if image.format != "JPEG" or image.mode != "RGB" or scale < 2:
            image.load()
            return to_rgb(_oriented(image))
        orientation = int(image.getexif().get(_ORIENTATION, 1))
        # draft picks the smallest DCT scale whose result is still at least this size
        image.draft("RGB", (width // scale, height // scale))
        image.load()
        preview = _oriented(image)
        size = (height, width) if orientation in _SWAPS else (width, height)
        return DeferredImage(data, size, preview, name)
    raise AssertionError("unreachable")  # reading_image re-raises every error


def _oriented(image: PILImage.Image) -> PILImage.Image:
    """``image`` turned upright by its EXIF orientation (itself when it has none)."""
    if int(image.getexif().get(_ORIENTATION, 1)) == 1:
        return image
    turned = ImageOps.exif_transpose(image)
    return turned if turned is not None else image


__all__ = ["PREVIEW_MIN_EDGE", "DeferredImage", "open_upload"]
