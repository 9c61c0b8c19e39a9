"""Is a torch model slower once a second thread of the process has run it?

Loads the preset's model, runs a few warm-up calls on thread A, then times single-item calls
on thread A, then on a second thread B, then on A again. Measured here: A 36-40 ms, then
44-50 ms on B and on A again. This is why local mode runs every model call on one thread
(``mmserve.gateway.local.model_thread``).

    python -m benchmarks.suite.torch_threads --preset minilm
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks.suite.presets import get_preset, make_inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="minilm")
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args()

    import mmserve.models  # noqa: F401  (registers the backends)
    from mmserve.models.loader import load_backend
    from mmserve.models.spec import ModelSpec

    preset = get_preset(args.preset)
    if preset.kind != "text":
        raise SystemExit("this check uses a text preset (minilm)")
    texts = list(make_inputs(preset).raw)
    call: Callable[[list[Any]], Any] = getattr(
        load_backend(preset.backend, ModelSpec(source=preset.source)), preset.method
    )

    def p50_ms(calls: int) -> float:
        times = []
        for index in range(calls):
            started = time.perf_counter()
            call([texts[index % len(texts)]])
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    with ThreadPoolExecutor(1) as first, ThreadPoolExecutor(1) as second:
        first.submit(p50_ms, 5).result()  # warm-up: thread A runs the model first
        for label, thread in (("A (first)", first), ("B (second)", second), ("A again", first)):
            print(f"thread {label}: p50 {thread.submit(p50_ms, args.calls).result():.1f} ms")


if __name__ == "__main__":
    main()
