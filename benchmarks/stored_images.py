"""What one retrieved photo costs the answer: the stored file -> the match in the JSON answer.

A 3-megapixel JPEG (2000x1500, noise, quality 90) is stored as a match payload and turned
into the ``retrieve`` step's output as the HTTP answer serialises it. Before issue 10 item 4
the image was decoded and re-encoded as PNG for every answer; now the stored file itself is
returned (decoded only for steps that need pixels, on a bounded pool).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.stored_images
    # the code before the change, for comparison: a checkout of 0293fd3 first on the path
    PYTHONPATH=/path/to/checkout-0293fd3/src .venv/bin/python -m benchmarks.stored_images
"""

from __future__ import annotations

import io
import time

import numpy as np
from PIL import Image

from mmserve.stores.contract import Match, Payload
from mmserve.workflow.steps.retrieve import to_retrieved


def main() -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (1500, 2000, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    match = Match(id="photo", score=0.5, payload=Payload(image=data))
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        answer = to_retrieved(match).model_dump(mode="json")
        timings.append(time.perf_counter() - started)
    encoded = answer["payload"]["image"]
    print(
        f"3 MP JPEG ({len(data) / 1e6:.1f} MB) -> match in the answer: best of 3 "
        f"{min(timings) * 1000:.0f} ms, base64 {len(encoded) / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
