"""The diffusion backends' source checks, importable without torch (the serve preflight).

A source is one of the offline pipelines the backend builds (``tiny://stable-diffusion`` and
``random://sd-turbo`` for ``diffusion``, ``tiny://instruct-pix2pix`` for
``instruct-pix2pix``) or any Hugging Face source (hub id, folder, ``pkg://``).
"""

from __future__ import annotations

from mmserve.errors import ModelLoadError
from mmserve.models.hf import check_hf_source
from mmserve.models.spec import ModelSpec

#: Every offline diffusion pipeline: source -> the backend that loads it.
OFFLINE_PIPELINES: dict[str, str] = {
    "tiny://stable-diffusion": "diffusion",
    "random://sd-turbo": "diffusion",
    "tiny://instruct-pix2pix": "instruct-pix2pix",
}


def check_diffusion_source(backend: str, spec: ModelSpec) -> None:
    """Raise ModelLoadError when ``backend`` cannot load ``spec.source`` (fast, no build)."""
    owner = OFFLINE_PIPELINES.get(spec.source)
    if owner is None:
        check_hf_source(spec)
    elif owner != backend:
        mine = [source for source, name in OFFLINE_PIPELINES.items() if name == backend]
        raise ModelLoadError(
            source=spec.source,
            reason=f"it is not a pipeline the {backend!r} backend loads",
            hint=f"offline sources: {', '.join(mine)}",
        )


def check_text_to_image_source(spec: ModelSpec) -> None:
    check_diffusion_source("diffusion", spec)


def check_instruct_pix2pix_source(spec: ModelSpec) -> None:
    check_diffusion_source("instruct-pix2pix", spec)


__all__ = [
    "OFFLINE_PIPELINES",
    "check_diffusion_source",
    "check_instruct_pix2pix_source",
    "check_text_to_image_source",
]
