"""What the ingress spends on one uploaded photo, stage by stage, in process (no server).

For the photo of ``benchmarks.image_path`` at 4000x3000 and 224x224 (JPEG q90), the median ms
of each step the ingress runs before a model call: the base64 decode of a JSON body's image
(skipped by a multipart upload), the door's decode (:func:`mmserve.media.deferred.open_upload`:
JPEG draft mode, EXIF orientation), and the reduction to the model's input
(:func:`mmserve.media.sizes.for_model`), for the tiny CLIP (32 px, ``deployments/tiny.yaml``)
and CLIP ViT-B/32 (224 px). Each is timed with the door's preview edge at 512 (the previous
rule: a 1/4 draft of a 12-megapixel photo) and at :data:`~mmserve.media.deferred.PREVIEW_MIN_EDGE`
(the smallest draft that keeps 224: 1/8), side by side in one process.

    .venv/bin/python -m benchmarks.image_door
"""

from __future__ import annotations

import argparse
import base64
import statistics
import time
from collections.abc import Callable
from typing import Any

from PIL import Image

import mmserve.media.deferred as deferred
from benchmarks.photos import jpeg, synthetic_photo
from mmserve.media.sizes import ImageInput, for_model

MODELS = {
    "tiny CLIP (32)": ImageInput(shortest_edge=32, crop=(32, 32)),
    "CLIP ViT-B/32 (224)": ImageInput(shortest_edge=224, crop=(224, 224)),
}


def median_ms(func: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def stages(data: bytes, needs: ImageInput, runs: int) -> dict[str, float]:
    """Median ms of each door stage for ``data`` and a model that ``needs`` this input."""
    text = base64.b64encode(data).decode()
    upload = deferred.open_upload(data)
    return {
        "base64": median_ms(lambda: base64.b64decode(text, validate=True), runs),
        "decode": median_ms(lambda: deferred.open_upload(data), runs),
        "reduce": median_ms(lambda: for_model(upload, needs), runs),
        "all": median_ms(
            lambda: for_model(deferred.open_upload(base64.b64decode(text)), needs), runs
        ),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.image_door")
    parser.add_argument("--runs", type=int, default=15)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    photo = synthetic_photo(4000, 3000, seed=14)
    uploads = {
        "4000x3000": jpeg(photo, quality=90),
        "224x224": jpeg(photo.resize((224, 224), Image.Resampling.LANCZOS), quality=90),
    }
    edges = {"preview edge 512 (before)": 512, "preview edge 224 (now)": deferred.PREVIEW_MIN_EDGE}
    print("| upload | model | door | preview | base64 | decode | reduce | all (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    try:
        for label, edge in edges.items():
            deferred.PREVIEW_MIN_EDGE = edge
            for name, data in uploads.items():
                upload = deferred.open_upload(data)
                preview = getattr(upload, "preview", upload).size
                for model, needs in MODELS.items():
                    ms = stages(data, needs, args.runs)
                    print(
                        f"| {name} | {model} | {label} | {preview[0]}x{preview[1]} "
                        f"| {ms['base64']:.1f} | {ms['decode']:.1f} | {ms['reduce']:.1f} "
                        f"| {ms['all']:.1f} |",
                        flush=True,
                    )
    finally:
        deferred.PREVIEW_MIN_EDGE = edges["preview edge 224 (now)"]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
