"""Peer: a plain FastAPI + transformers server, one process -- what a user writes by hand.

One model in one uvicorn process; the endpoint is a plain ``def`` (FastAPI runs it in its
thread pool, so concurrent requests call the model concurrently, unbatched).

    python -m benchmarks.peers.fastapi_peer --preset minilm --port 8101
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from fastapi import FastAPI

from benchmarks.peers.handmade import decode, load


def create_app(preset_name: str, device: str) -> FastAPI:
    preset, predict = load(preset_name, device)
    app = FastAPI()

    @app.post("/predict")
    def run(body: dict[str, Any]) -> Any:
        return predict([decode(preset, body)])[0]

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    app = create_app(args.preset, args.device)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
