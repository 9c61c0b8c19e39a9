"""for_each benchmark: one workflow run captioning 16 images (``for_each``, the items' model
calls batched) against 16 separate runs of the ``caption`` workflow, one after the other and
all at once. Local mode, the models of a config (deployments/tiny.yaml by default: tiny BLIP
on CPU); with ``--url`` the same three against a running mmserve server over HTTP.

Run (from the repository root)::

    .venv/bin/python benchmarks/for_each.py                   # local, tiny models
    .venv/bin/python benchmarks/for_each.py --repeats 5 --url http://127.0.0.1:8000

Prints a table (median wall time of ``--repeats`` rounds after one warm-up) and writes
benchmarks/results/for_each.json. The served variant needs a ``caption_each`` workflow on the
server: the one this script writes to benchmarks/results/caption_each.yaml.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from PIL import Image

from mmserve.config import AppConfig
from mmserve.local.mode import LocalApp

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CAPTION_EACH = """\
name: caption_each
inputs:
  images: {type: array, items: {type: image}}
steps:
  captions:
    uses: caption
    for_each: ${inputs.images}
    as: image
    with: {image: "${image}"}
outputs:
  captions: ${captions[*].text}
"""


def images(count: int) -> list[Image.Image]:
    return [
        Image.new("RGB", (64, 64), (i * 15 % 256, 255 - i * 15 % 256, 90)) for i in range(count)
    ]


def timed(rounds: int, once: Callable[[], Awaitable[Any]]) -> float:
    """Median seconds of ``rounds`` runs of ``once`` after one warm-up."""

    async def measure() -> list[float]:
        await once()
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            await once()
            times.append(time.perf_counter() - start)
        return times

    return statistics.median(asyncio.run(measure()))


def local_cases(config: Path, pictures: list[Image.Image]) -> dict[str, Callable[[], Any]]:
    folder = Path(tempfile.mkdtemp(prefix="for_each_"))
    (folder / "caption_each.yaml").write_text(CAPTION_EACH)
    app = LocalApp(AppConfig.load(config))
    each = app.workflow(str(folder / "caption_each.yaml"))
    caption = app.workflow(str(ROOT / "workflows" / "caption.yaml"))

    async def for_each() -> Any:
        return await app.run(each, {"images": pictures}, use_cache=False)

    async def sequential() -> Any:
        return [await app.run(caption, {"image": p}) for p in pictures]

    async def concurrent() -> Any:
        return await asyncio.gather(*(app.run(caption, {"image": p}) for p in pictures))

    return {
        "for_each (1 run)": for_each,
        "16 runs, one by one": sequential,
        "16 runs, at once": concurrent,
    }


def served_cases(url: str, pictures: list[Image.Image]) -> dict[str, Callable[[], Any]]:
    import httpx

    def b64(picture: Image.Image) -> str:
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        return base64.b64encode(buffer.getvalue()).decode("ascii")

    encoded = [b64(p) for p in pictures]
    bypass = {"x-mmserve-cache": "bypass"}

    async def post(client: httpx.AsyncClient, workflow: str, inputs: dict[str, Any]) -> Any:
        response = await client.post(
            f"/v1/workflows/{workflow}/run", json={"inputs": inputs}, headers=bypass
        )
        response.raise_for_status()
        return response.json()

    def client() -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=url, timeout=600)

    async def for_each() -> Any:
        async with client() as http:
            return await post(http, "caption_each", {"images": encoded})

    async def sequential() -> Any:
        async with client() as http:
            return [await post(http, "caption", {"image": e}) for e in encoded]

    async def concurrent() -> Any:
        async with client() as http:
            return await asyncio.gather(*(post(http, "caption", {"image": e}) for e in encoded))

    return {
        "for_each (1 run)": for_each,
        "16 runs, one by one": sequential,
        "16 runs, at once": concurrent,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "deployments" / "tiny.yaml"))
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--url", help="also measure a running server (with caption_each)")
    args = parser.parse_args()
    pictures = images(args.items)
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, float]] = {
        "local": {
            n: timed(args.repeats, c) for n, c in local_cases(Path(args.config), pictures).items()
        }
    }
    if args.url:
        (RESULTS / "caption_each.yaml").write_text(CAPTION_EACH)  # load it on the server
        cases = served_cases(args.url, pictures)
        results["served"] = {n: timed(args.repeats, c) for n, c in cases.items()}
    print(f"{args.items} images, median of {args.repeats} rounds (s):")
    for mode, rows in results.items():
        for name, seconds in rows.items():
            print(f"  {mode:<7} {name:<22} {seconds:8.3f}")
    (RESULTS / "for_each.json").write_text(json.dumps({"items": args.items, **results}, indent=2))


if __name__ == "__main__":
    main()
