"""Images at the door and on their way to a model.

* :mod:`.decode` -- bytes to an RGB image, header checked before pixels are decoded;
* :mod:`.deferred` -- an uploaded photo decoded once, small, its full pixels on demand;
* :mod:`.values` -- any accepted form coerced to an image, :data:`ImageValue`, PNG out;
* :mod:`.sizes` -- an image reduced to what the receiving model reads.

The names below are the public ones; ``from mmserve.media import ImageValue`` works.
"""

from mmserve.media.decode import (
    DEFAULT_MAX_ASPECT_RATIO,
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_IMAGE_SIDE,
    DEFAULT_MAX_PIXELS,
    ImageLimits,
    base64_image_bytes,
    check_image_bytes,
    decode_image,
    image_size,
    reading_image,
    to_rgb,
)
from mmserve.media.values import (
    FILE_BYTES_ATTR,
    ImageValue,
    coerce_image,
    encode_png_base64,
    file_bytes,
    with_file_bytes,
)

__all__ = [
    "DEFAULT_MAX_ASPECT_RATIO",
    "DEFAULT_MAX_IMAGE_BYTES",
    "DEFAULT_MAX_IMAGE_SIDE",
    "DEFAULT_MAX_PIXELS",
    "FILE_BYTES_ATTR",
    "ImageLimits",
    "ImageValue",
    "base64_image_bytes",
    "check_image_bytes",
    "coerce_image",
    "decode_image",
    "encode_png_base64",
    "file_bytes",
    "image_size",
    "reading_image",
    "to_rgb",
    "with_file_bytes",
]
