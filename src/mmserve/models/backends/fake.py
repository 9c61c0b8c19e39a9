"""``fake``: a deterministic, weight-free model for every role, for testing workflows.

It needs neither torch nor weights, answers instantly and always the same way, yet its
outputs relate to the inputs in a way a workflow can check:

* a caption names the image's dominant colours: ``"a red and white image"``;
* a text vector is the normalised sum of one pseudo-random vector per word (seeded by the
  word's hash), so texts sharing words are close;
* an image vector is mostly the vector of its caption, plus a little of a vector seeded by
  its pixels: the text ``"red"`` retrieves red images, and distinct images stay distinct;
* an answer: colour questions get the dominant colour, yes/no questions get ``"yes"`` when
  they name one of the image's colours, counting questions get ``"1"``.

Source: ``fake://`` or ``fake://dim=64`` (vector size, default 32); ``delay_ms=<n>``
(``fake://dim=64,delay_ms=200``) makes every call take that long, sleeping (off the CPU), as a
model of known capacity for load and back-pressure tests; ``gate=<path>``
(``fake://gate=/tmp/run/open``) makes loading wait until that file exists, as a model whose
load a readiness test holds and then lets go.

For tests of failure handling, any text it is given (a text to embed, a caption prompt, a
question) that contains :data:`FAIL_MARKER` (``fake:fail``) makes the call raise
``ValueError``, as a real model's bug on one bad input would: a batch holding such an item
fails, and only that item's caller should see it.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from mmserve.errors import ModelLoadError
from mmserve.models.identity import model_identity
from mmserve.models.roles import CaptionItem, VqaItem
from mmserve.models.spec import Answer, EmbeddingSpace, ModelSpec, Vectors

if TYPE_CHECKING:
    from PIL.Image import Image

DEFAULT_DIM = 32
#: A text containing this makes the fake model fail (see the module docs).
FAIL_MARKER = "fake:fail"
_GATE_POLL_S = 0.2  # how often a gated load looks for its file
_IMAGE_SHARE = 0.25  # weight of the pixel-seeded part of an image vector
_WORD = re.compile(r"[a-z0-9]+")
_YES_NO = ("is", "are", "does", "do", "can", "was", "were", "has", "have")
_PALETTE: dict[str, tuple[int, int, int]] = {
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
}
_NAMES = list(_PALETTE)
_RGB = np.array(list(_PALETTE.values()), dtype=np.float32)


@dataclass(frozen=True)
class _Options:
    dim: int = DEFAULT_DIM
    delay_s: float = 0.0
    #: Loading waits until this file exists.
    gate: Path | None = None


def _parse_options(source: str) -> _Options:
    """The options of a ``fake://[dim=<n>][,delay_ms=<n>][,gate=<path>]`` source."""
    scheme, sep, options = source.partition("://")
    if not sep or scheme != "fake":
        raise ModelLoadError(
            source=source,
            reason="the 'fake' backend takes a source of the form fake:// or fake://dim=<n>",
        )
    found: dict[str, int] = {"dim": DEFAULT_DIM, "delay_ms": 0}
    gate: Path | None = None
    for option in filter(None, options.split(",")):
        key, _, value = option.partition("=")
        if key == "gate" and value:
            gate = Path(value)
            continue
        if key not in found or not value.isdigit() or (key == "dim" and int(value) < 1):
            raise ModelLoadError(
                source=source,
                reason=f"unknown fake model option {option!r}",
                hint="the options are dim=<positive integer>, delay_ms=<integer> and "
                "gate=<path>, e.g. fake://dim=64,delay_ms=100",
            )
        found[key] = int(value)
    return _Options(found["dim"], found["delay_ms"] / 1000, gate)


def _refuse_marked(texts: Sequence[str | None]) -> None:
    for text in texts:
        if text is not None and FAIL_MARKER in text:
            raise ValueError(f"the fake model fails on purpose on a text with {FAIL_MARKER!r}")


def _seeded_vector(key: bytes, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(key).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def dominant_colours(image: Image, *, top: int = 2) -> list[str]:
    """The names of the ``top`` palette colours covering most of the image (>= 25% each,
    the first always included), most common first."""
    small = np.asarray(image.convert("RGB").resize((16, 16)), dtype=np.float32).reshape(-1, 3)
    nearest = ((small[:, None, :] - _RGB[None, :, :]) ** 2).sum(axis=-1).argmin(axis=1)
    counts = Counter(int(i) for i in nearest).most_common()
    names = [_NAMES[counts[0][0]]]
    names += [_NAMES[i] for i, n in counts[1:top] if n >= 0.25 * len(nearest)]
    return names


class FakeBackend:
    """Deterministic weight-free encoder, captioner and VQA model (see the module docs)."""

    roles: ClassVar[frozenset[str]] = frozenset(
        {"image_encoder", "text_encoder", "captioner", "vqa"}
    )

    @classmethod
    def check_source(cls, spec: ModelSpec) -> None:
        """The source must be ``fake://`` or ``fake://dim=<n>`` (nothing to download)."""
        _parse_options(spec.source)

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        options = _parse_options(spec.source)
        self._delay_s = options.delay_s
        while options.gate is not None and not options.gate.exists():
            time.sleep(_GATE_POLL_S)
        self._space = EmbeddingSpace(
            backend="fake", model_id=model_identity(spec.source, spec.revision), dim=options.dim
        )

    @property
    def space(self) -> EmbeddingSpace:
        return self._space

    def _work(self) -> None:
        """A model call's time: ``delay_ms`` of the source (0: none), off the CPU."""
        if self._delay_s:
            time.sleep(self._delay_s)

    def _text_vector(self, text: str) -> np.ndarray:
        words = _WORD.findall(text.lower()) or [""]
        total = sum(_seeded_vector(word.encode(), self._space.dim) for word in words)
        return _unit(np.asarray(total))

    def embed_texts(self, texts: Sequence[str]) -> Vectors:
        """(N, dim) unit-norm vectors; texts sharing words get close vectors."""
        _refuse_marked(texts)
        self._work()
        rows = [self._text_vector(text) for text in texts]
        return np.array(rows, dtype=np.float32).reshape(len(rows), self._space.dim)

    def embed_images(self, images: Sequence[Image]) -> Vectors:
        """(N, dim) unit-norm vectors near the vector of each image's caption."""
        self._work()
        rows = []
        for image in images:
            rgb = image.convert("RGB")
            pixels = _seeded_vector(f"{rgb.size}".encode() + rgb.tobytes(), self._space.dim)
            meaning = self._text_vector(self._describe(rgb))
            rows.append(_unit((1 - _IMAGE_SHARE) * meaning + _IMAGE_SHARE * _unit(pixels)))
        return np.array(rows, dtype=np.float32).reshape(len(rows), self._space.dim)

    @staticmethod
    def _describe(image: Image) -> str:
        return f"a {' and '.join(dominant_colours(image))} image"

    def caption(self, items: Sequence[CaptionItem]) -> list[str]:
        """``"a <colour>[ and <colour>] image"``, after the prompt when one is given."""
        _refuse_marked([item.prompt for item in items])
        self._work()
        return [
            f"{item.prompt.strip()} {self._describe(item.image)}"
            if item.prompt and item.prompt.strip()
            else self._describe(item.image)
            for item in items
        ]

    def answer(self, items: Sequence[VqaItem]) -> list[Answer]:
        """Rule-based answers about colours (see the module docs); score is always 1.0."""
        _refuse_marked([item.question for item in items])
        self._work()
        return [Answer(text=self._answer(item.image, item.question), score=1.0) for item in items]

    @staticmethod
    def _answer(image: Image, question: str) -> str:
        words = _WORD.findall(question.lower())
        colours = dominant_colours(image)
        if words and words[0] in _YES_NO:
            return "yes" if any(word in colours for word in words) else "no"
        if words[:2] == ["how", "many"]:
            return "1"
        return colours[0]


__all__ = ["DEFAULT_DIM", "FAIL_MARKER", "FakeBackend", "dominant_colours"]
