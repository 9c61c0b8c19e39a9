"""``diffusion`` and ``instruct-pix2pix``: image generation and editing with diffusers.

* :class:`TextToImageBackend` (role ``image_generator``) loads any text-to-image pipeline
  through ``AutoPipelineForText2Image``: Stable Diffusion 1.5, SD-Turbo, SDXL-Turbo, ...
* :class:`InstructPix2PixBackend` (role ``image_editor``) edits an image from a text
  instruction with ``StableDiffusionInstructPix2PixPipeline``.

Sizes: a pipeline works in latents of ``vae_scale_factor`` (8) pixels, so a generated
image's width and height must be multiples of it, and an edit's output is the input image's
size rounded *down* to a multiple of it (the input is resized to that size first: a 500x375
photo comes back as 496x368). ``max_pixels`` and ``max_steps`` of the model entry cap what one
request may ask for; over a cap, or off the multiple, the request fails with an InputError
(HTTP 422) before any work: the gateways check each item against the model entry before the
pipeline is loaded or called (``check_item``, :mod:`mmserve.models.image_limits`), and the
backend checks again with its pipeline's multiple. A batch holds items of one size and step
count (the roles' batch keys), so a bad size fails only the requests that asked for it.

Seeds: each item's noise comes from its own ``torch.Generator`` seeded with the item's seed,
so the same request gives the same bytes on the same device. Its batch mates change nothing
but float rounding: batched CPU kernels may round a value differently, which moves a pixel
by one step now and then (measured on the tiny pipeline: 1 pixel value in 9,216 off by one).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from PIL import Image as PILImage

from mmserve.errors import InputError
from mmserve.models.device import Placement, placement_for
from mmserve.models.hf import HuggingFaceBackend
from mmserve.models.image_limits import (
    check_edit_item,
    check_generate_item,
    check_size,
    check_steps,
    edit_size,
)
from mmserve.models.roles.images import EditItem, GenerateItem
from mmserve.models.sources.diffusion import check_diffusion_source
from mmserve.models.sources.resolve import ResolvedSource, from_pretrained, resolve_source
from mmserve.models.sources.tiny import scheme_model_path
from mmserve.models.sources.tiny_diffusion import RANDOM_BUILDERS, TINY_BUILDERS
from mmserve.models.spec import ModelSpec

if TYPE_CHECKING:
    from PIL.Image import Image


def _offline_build(source: str) -> tuple[str, str, dict[str, Any]] | None:
    """(scheme, arch, builders) when ``source`` names one of the offline diffusion
    pipelines (``tiny://stable-diffusion``, ``tiny://instruct-pix2pix``, ``random://sd-turbo``)."""
    scheme, _, arch = source.partition("://")
    builders: dict[str, Any] | None = {"tiny": TINY_BUILDERS, "random": RANDOM_BUILDERS}.get(scheme)
    if builders is None or arch not in builders:
        return None
    return scheme, arch, builders


def resolve_diffusion_source(spec: ModelSpec) -> ResolvedSource:
    """The folder or hub id of ``spec.source``; the offline diffusion pipelines are built on
    first use (into the same cache as every ``tiny://``/``random://`` model)."""
    offline = _offline_build(spec.source)
    if offline is not None:
        scheme, arch, builders = offline
        folder = scheme_model_path(scheme, arch, builders, source=spec.source)
        return ResolvedSource(spec.source, str(folder))
    return resolve_source(spec.source, revision=spec.revision)


class _Diffusion(HuggingFaceBackend):
    """What both backends share: loading a pipeline, the size multiple, caps, generators."""

    _pipeline_class: ClassVar[str]

    #: The backend's registered name (its offline pipelines: diffusion_sources).
    _backend_name: ClassVar[str]

    @classmethod
    def check_source(cls, spec: ModelSpec) -> None:
        """Fast: an offline diffusion pipeline of this backend's kind, or any Hugging Face
        source (hub id, folder, ``pkg://``)."""
        check_diffusion_source(cls._backend_name, spec)

    def __init__(self, spec: ModelSpec) -> None:
        import diffusers  # deferred: pulls in diffusers (a diffusion model only)

        self.spec = spec
        self._placement: Placement = placement_for(spec)
        resolved = resolve_diffusion_source(spec)
        loader = getattr(diffusers, self._pipeline_class)
        pipeline = from_pretrained(loader, resolved, **_load_options(self._placement))
        pipeline.set_progress_bar_config(disable=True)
        self._pipeline: Any = pipeline.to(self._placement.device)
        #: Width and height must be multiples of this (one latent pixel).
        self.size_multiple = int(self._pipeline.vae_scale_factor)

    def check_size(self, width: int, height: int) -> None:
        """Raise InputError unless ``width`` x ``height`` is a size this model can make."""
        check_size(width, height, multiple=self.size_multiple, max_pixels=self.spec.max_pixels)

    def check_steps(self, steps: int) -> None:
        check_steps(steps, max_steps=self.spec.max_steps)

    def _generators(self, seeds: Sequence[int]) -> list[torch.Generator]:
        device = self._placement.device
        return [torch.Generator(device=device).manual_seed(seed) for seed in seeds]


def _load_options(placement: Placement) -> dict[str, Any]:
    """``from_pretrained`` options: the dtype; and, as the CLI asks of every library
    (``HF_HUB_DISABLE_PROGRESS_BARS``), no progress bar on stderr."""
    from diffusers.utils import logging as diffusers_logging  # deferred: pulls in diffusers

    if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "").strip() in ("1", "true", "yes"):
        diffusers_logging.disable_progress_bar()
    options: dict[str, Any] = {"dtype": placement.dtype}
    if importlib.util.find_spec("accelerate") is None:
        # diffusers' default needs accelerate; saying so keeps its warning off stderr
        options["low_cpu_mem_usage"] = False
    return options


def _one_key(keys: set[Any], what: str) -> None:
    if len(keys) > 1:  # the role's batch key keeps such items apart; a direct call may not
        raise InputError(f"one {what} batch must share its settings, got {sorted(keys)}")


class TextToImageBackend(_Diffusion):
    """Text-to-image with any ``AutoPipelineForText2Image`` pipeline (SD 1.5, SD-Turbo, ...)."""

    roles: ClassVar[frozenset[str]] = frozenset({"image_generator"})
    _pipeline_class = "AutoPipelineForText2Image"
    _backend_name = "diffusion"
    #: Fast, before loading: what the model entry alone refuses (sizes, steps).
    check_item = staticmethod(check_generate_item)

    def generate(self, items: Sequence[GenerateItem]) -> list[Image]:
        """One image per item, each ``width`` x ``height``."""
        if not items:
            return []
        _one_key({(i.width, i.height, i.steps, i.guidance) for i in items}, "generation")
        first = items[0]
        self.check_size(first.width, first.height)
        self.check_steps(first.steps)
        negatives = [item.negative_prompt or "" for item in items]
        with torch.inference_mode():
            out = self._pipeline(
                prompt=[item.prompt for item in items],
                negative_prompt=negatives if any(negatives) else None,
                width=first.width,
                height=first.height,
                num_inference_steps=first.steps,
                guidance_scale=first.guidance,
                generator=self._generators([item.seed for item in items]),
                output_type="pil",
            )
        images: list[Image] = list(out.images)
        return images


class InstructPix2PixBackend(_Diffusion):
    """Instruction-guided image editing (``StableDiffusionInstructPix2PixPipeline``)."""

    roles: ClassVar[frozenset[str]] = frozenset({"image_editor"})
    _pipeline_class = "StableDiffusionInstructPix2PixPipeline"
    _backend_name = "instruct-pix2pix"
    #: Fast, before loading: what the model entry alone refuses (sizes, steps).
    check_item = staticmethod(check_edit_item)

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The size an edit of an image of ``size`` comes back at (rounded down to the
        model's multiple); InputError when the image is smaller than that either way."""
        return edit_size(size, multiple=self.size_multiple)

    def edit(self, items: Sequence[EditItem]) -> list[Image]:
        """One edited image per item, at its input's size rounded down (see the module doc)."""
        if not items:
            return []
        keys = {(i.image.size, i.steps, i.guidance, i.image_guidance) for i in items}
        _one_key(keys, "edit")
        first = items[0]
        width, height = self.output_size(first.image.size)
        self.check_size(width, height)
        self.check_steps(first.steps)
        images = [_fit(item.image, (width, height)) for item in items]
        with torch.inference_mode():
            out = self._pipeline(
                prompt=[item.instruction for item in items],
                image=images,
                num_inference_steps=first.steps,
                guidance_scale=first.guidance,
                image_guidance_scale=first.image_guidance,
                generator=self._generators([item.seed for item in items]),
                output_type="pil",
            )
        edited: list[Image] = list(out.images)
        return edited


def _fit(image: Image, size: tuple[int, int]) -> Image:
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return rgb if rgb.size == size else rgb.resize(size, PILImage.Resampling.LANCZOS)


__all__ = ["InstructPix2PixBackend", "TextToImageBackend", "resolve_diffusion_source"]
