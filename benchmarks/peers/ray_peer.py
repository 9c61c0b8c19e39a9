"""Peer: the minimal hand-written Ray Serve app with ``@serve.batch`` (the Ray floor).

One deployment that takes the HTTP request itself and batches the model calls, exactly as
Ray Serve's batching guide writes it: no workflow engine, no second hop.

    python -m benchmarks.peers.ray_peer --preset minilm --port 8103 --max-batch 16 --cpus 2
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import time
from types import FrameType
from typing import Any

# As mmserve's embedded Ray; set before Ray is imported, which reads it then.
os.environ.setdefault("RAY_AUTH_MODE", "token")

import ray
from ray import serve
from starlette.requests import Request


def build(preset_name: str, device: str, max_batch: int, wait_s: float, options: dict[str, Any]):  # type: ignore[no-untyped-def]
    @serve.deployment(**options)
    class Model:
        def __init__(self) -> None:
            from benchmarks.peers.handmade import decode, load

            self._decode = decode
            self._preset, self._predict = load(preset_name, device)

        @serve.batch(max_batch_size=max_batch, batch_wait_timeout_s=wait_s)
        async def batched(self, inputs: list[Any]) -> list[Any]:
            return self._predict(inputs)

        async def __call__(self, request: Request) -> Any:
            body = await request.json()
            return await self.batched(self._decode(self._preset, body))

    return Model.bind()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--wait-ms", type=float, default=0.0)
    parser.add_argument("--cpus", type=float, default=2.0)
    parser.add_argument("--gpus", type=float, default=0.0)
    args = parser.parse_args()
    ray.init(num_cpus=math.ceil(args.cpus) + 1, include_dashboard=False)
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    options = {
        "max_ongoing_requests": max(64, args.max_batch),
        "ray_actor_options": {"num_cpus": args.cpus, "num_gpus": args.gpus},
    }
    app = build(args.preset, args.device, args.max_batch, args.wait_ms / 1000.0, options)
    serve.run(app, name="rayfloor", route_prefix="/predict")
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ray floor ready", flush=True)
    while not stopping:
        time.sleep(0.2)
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
