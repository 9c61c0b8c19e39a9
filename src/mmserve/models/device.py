"""Where a model runs: device and dtype from a :class:`ModelSpec`, and moving inputs there.

``auto`` means CUDA with float16 when a GPU is visible, else CPU with float32 (half
precision on CPU is slow and poorly supported). An explicit ``device``/``dtype`` wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mmserve.errors import ModelLoadError
from mmserve.models.spec import ModelSpec, Vectors

if TYPE_CHECKING:
    from PIL.Image import Image

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


@dataclass(frozen=True)
class Placement:
    """The device and floating-point dtype a model's weights and inputs live in."""

    device: torch.device
    dtype: torch.dtype

    def move(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Tensors of ``batch`` on the device; floating tensors (pixels) also in ``dtype``.
        Integer tensors (token ids, masks) keep their type."""
        moved: dict[str, Any] = {}
        for key, value in batch.items():
            if isinstance(value, torch.Tensor):
                if value.is_floating_point():
                    value = value.to(device=self.device, dtype=self.dtype)
                else:
                    value = value.to(device=self.device)
            moved[key] = value
        return moved


def placement_for(spec: ModelSpec) -> Placement:
    """Resolve ``spec.device``/``spec.dtype`` (``auto`` included) to a :class:`Placement`."""
    cuda = torch.cuda.is_available()
    if spec.device == "cuda" and not cuda:
        raise ModelLoadError(
            source=spec.source,
            reason="device 'cuda' was requested but no CUDA GPU is visible",
            hint="set device: auto (or cpu) in the model config",
        )
    device = torch.device(
        "cuda" if spec.device == "cuda" or (spec.device == "auto" and cuda) else "cpu"
    )
    if spec.dtype != "auto":
        dtype = _DTYPES[spec.dtype]
    else:
        dtype = torch.float16 if device.type == "cuda" else torch.float32
    return Placement(device, dtype)


def as_rgb(images: Sequence[Image]) -> list[Image]:
    """The images as RGB (image processors expect three channels)."""
    return [image if image.mode == "RGB" else image.convert("RGB") for image in images]


def unit_rows(features: torch.Tensor) -> Vectors:
    """L2-normalise each row in float32 and hand it back as a (N, dim) numpy array."""
    rows = torch.nn.functional.normalize(features.float(), p=2.0, dim=-1)
    return np.ascontiguousarray(rows.cpu().numpy(), dtype=np.float32)


def empty_vectors(dim: int) -> Vectors:
    """A (0, dim) batch, for empty inputs."""
    return np.zeros((0, dim), dtype=np.float32)


__all__ = ["Placement", "as_rgb", "empty_vectors", "placement_for", "unit_rows"]
