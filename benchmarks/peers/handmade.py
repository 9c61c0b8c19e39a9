"""The model code a user writes by hand with transformers, shared by every peer server.

Same weights, same inputs and the same computation as mmserve's backends (mean-pooled
MiniLM; greedy BLIP captioning), so the peers and mmserve differ only in the serving around
the model. Weights come from the same folders mmserve resolves (``random://`` models are
built once into mmserve's cache; the user would have them in a folder too).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

from benchmarks.suite.presets import Preset, get_preset

#: A loaded model: a batch of decoded inputs in, one JSON-able output per input out.
Predict = Callable[[list[Any]], list[Any]]


def decode(preset: Preset, body: dict[str, Any]) -> Any:
    """The model input of one request body (``{"text": ...}`` or ``{"image": base64}``)."""
    if preset.kind == "text":
        return str(body["text"])
    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(body["image"]))).convert("RGB")


def _folder(preset: Preset) -> str:
    from mmserve.models.sources.resolve import resolve_source

    return resolve_source(preset.source).location


def _device_dtype(device: str) -> tuple[Any, Any]:
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device), (torch.float16 if device == "cuda" else torch.float32)


def _minilm(preset: Preset, device: str) -> Predict:
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = _folder(preset)
    where, dtype = _device_dtype(device)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, dtype=dtype).to(where).eval()

    def predict(texts: list[Any]) -> list[Any]:
        batch = tokenizer(
            texts, padding=True, truncation=True, max_length=256, return_tensors="pt"
        ).to(where)
        with torch.inference_mode():
            tokens = model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        vectors = torch.nn.functional.normalize(pooled, dim=-1)
        return [{"vector": row} for row in vectors.cpu().tolist()]

    return predict


def _blip(preset: Preset, device: str) -> Predict:
    import torch
    from transformers import AutoImageProcessor, AutoTokenizer, BlipForConditionalGeneration

    folder = _folder(preset)
    where, dtype = _device_dtype(device)
    images = AutoImageProcessor.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = BlipForConditionalGeneration.from_pretrained(folder, dtype=dtype).to(where).eval()

    def predict(batch: list[Any]) -> list[Any]:
        pixels = images(images=batch, return_tensors="pt")["pixel_values"].to(where, dtype)
        with torch.inference_mode():
            out = model.generate(
                pixel_values=pixels,
                max_new_tokens=preset.max_new_tokens or 30,
                do_sample=False,
                num_beams=1,
            )
        texts = tokenizer.batch_decode(out, skip_special_tokens=True)
        return [{"caption": text.strip()} for text in texts]

    return predict


def _fake(preset: Preset, device: str) -> Predict:
    from mmserve.models.backends.fake import FakeBackend
    from mmserve.models.roles import CaptionItem
    from mmserve.models.spec import ModelSpec

    model = FakeBackend(ModelSpec(source=preset.source))

    def predict(batch: list[Any]) -> list[Any]:
        items = [CaptionItem(image=image) for image in batch]
        return [{"caption": text} for text in model.caption(items)]

    return predict


_LOADERS: dict[str, Callable[[Preset, str], Predict]] = {
    "minilm": _minilm,
    "blip": _blip,
    "fake": _fake,
}


def load(preset_name: str, device: str = "auto") -> tuple[Preset, Predict]:
    """The preset and its hand-written batched predict function."""
    preset = get_preset(preset_name)
    return preset, _LOADERS[preset.name](preset, device)
