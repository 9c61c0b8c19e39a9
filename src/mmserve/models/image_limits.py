"""What the diffusion backends refuse, known from a model's config entry, without loading it.

A diffusers pipeline works in latents of ``vae_scale_factor`` pixels: 8 for every pipeline
the ``diffusion`` and ``instruct-pix2pix`` backends load (Stable Diffusion 1.5, SD-Turbo,
SDXL-Turbo, InstructPix2Pix, and the offline ``tiny://`` and ``random://`` pipelines). A
generated image's width and height must be multiples of it; an edit comes back at its
input's size rounded *down* to one. ``max_pixels`` and ``max_steps`` of the model entry cap
what one request may ask for.

:func:`check_generate_item` and :func:`check_edit_item` are those backends' ``check_item``
(registered in :mod:`mmserve.models`): the gateways ask it of every item before the model is
loaded or called (:func:`mmserve.models.loader.item_check_of`), so a bad request is refused at
once, in the caller's process, with the error the model would raise. A loaded backend checks
again with its own pipeline's multiple. No torch here.
"""

from __future__ import annotations

from typing import Any

from mmserve.errors import InputError, InputTooLargeError
from mmserve.models.spec import ModelSpec

#: Width and height multiple of the pipelines these backends load (their VAE's scale factor).
SIZE_MULTIPLE = 8


def check_size(width: int, height: int, *, multiple: int, max_pixels: int) -> None:
    """Raise InputError unless ``width`` x ``height`` is a positive multiple of ``multiple``
    each way, and InputTooLargeError when it is over ``max_pixels``."""
    if width % multiple or height % multiple or width < multiple or height < multiple:
        raise InputError(
            f"width and height must be positive multiples of {multiple} for this model, "
            f"got {width}x{height}",
            name="width" if width % multiple or width < multiple else "height",
            hint=f"try {_round(width, multiple)}x{_round(height, multiple)}",
        )
    if width * height > max_pixels:
        raise InputTooLargeError(
            f"{width}x{height} = {width * height} pixels is over this model's limit of "
            f"{max_pixels} (max_pixels)",
            name="width",
            hint="ask for a smaller image, or raise max_pixels on the model entry",
        )


def check_steps(steps: int, *, max_steps: int) -> None:
    """Raise InputError when ``steps`` is over ``max_steps``."""
    if steps > max_steps:
        raise InputError(
            f"steps={steps} is over this model's limit of {max_steps} (max_steps)",
            name="steps",
            hint="ask for fewer steps, or raise max_steps on the model entry",
        )


def edit_size(size: tuple[int, int], *, multiple: int) -> tuple[int, int]:
    """The size an edit of an image of ``size`` comes back at: rounded down to ``multiple``
    each way. Raises InputError when the image is smaller than ``multiple`` either way."""
    width, height = size
    rounded = width // multiple * multiple, height // multiple * multiple
    if 0 in rounded:
        raise InputError(
            f"the image is {width}x{height}; this model needs at least {multiple} pixels each way",
            name="image",
        )
    return rounded


def check_generate_item(spec: ModelSpec, method: str, item: Any) -> None:
    """``check_item`` of the ``diffusion`` backend: a ``generate`` item's size and steps."""
    if method == "generate":
        check_size(item.width, item.height, multiple=SIZE_MULTIPLE, max_pixels=spec.max_pixels)
        check_steps(item.steps, max_steps=spec.max_steps)


def check_edit_item(spec: ModelSpec, method: str, item: Any) -> None:
    """``check_item`` of the ``instruct-pix2pix`` backend: an ``edit`` item's output size (its
    image's, rounded down) and steps."""
    if method == "edit":
        width, height = edit_size(item.image.size, multiple=SIZE_MULTIPLE)
        check_size(width, height, multiple=SIZE_MULTIPLE, max_pixels=spec.max_pixels)
        check_steps(item.steps, max_steps=spec.max_steps)


def _round(value: int, multiple: int) -> int:
    return max(multiple, value // multiple * multiple)


__all__ = [
    "SIZE_MULTIPLE",
    "check_edit_item",
    "check_generate_item",
    "check_size",
    "check_steps",
    "edit_size",
]
