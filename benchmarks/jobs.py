"""Jobs: how fast the server accepts them, and what a job costs over a synchronous run, on
the embedded SQLite broker and on Redis, in one sitting (issue 28).

One private Ray; the app of the weight-free ``fake`` models with ``chain`` (three caption
steps; each model call takes microseconds, so what is measured is the serving and the
queue), deployed once per broker: ``sqlite`` (the default: kombu's SQLAlchemy transport and
the job store on SQLite files), then ``redis`` (a ``redis-server`` started here). Per broker:

- **accepted/s**: ``--jobs`` submits (``POST /v1/workflows/chain/jobs``) from ``--concurrency``
  clients at once, 202s per second of wall time (the worker runs them meanwhile);
- **drain**: seconds until the last of them has finished, and jobs finished per second;
- **overhead**: ``--pairs`` times, one at a time, a synchronous ``/run`` and a job of the same
  inputs (submitted, then polled every 10 ms until it has succeeded): p50 and p90 of each and
  the p50 of the job's extra time over its run.

Run (from the repository root, on a quiet machine)::

    .venv/bin/python -m benchmarks.jobs
    .venv/bin/python -m benchmarks.jobs --jobs 100 --pairs 20     # shorter

Writes ``benchmarks/results/jobs.{json,md}`` and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from mmserve.config import AppConfig

RESULTS = Path(__file__).resolve().parent / "results"
CHAIN = """
name: chain
inputs:
  image: {type: image}
steps:
  first: {uses: caption, with: {image: "${inputs.image}"}}
  second: {uses: caption, with: {image: "${inputs.image}", prompt: "${first.text}"}}
  third: {uses: caption, with: {image: "${inputs.image}", prompt: "${second.text}"}}
outputs:
  caption: ${third.text}
"""


def _image() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 40, 40)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _config(folder: Path, broker: str) -> AppConfig:
    (folder / "chain.yaml").write_text(CHAIN, encoding="utf-8")
    fake = {"backend": "fake", "source": "fake://", "cpus": 0.1}
    data = {
        "models": {r: fake for r in ("image_encoder", "text_encoder", "captioner", "vqa")},
        "store": {"kind": "lancedb", "path": str(folder / f"store-{broker.split(':')[0]}")},
        "workflows": [str(folder / "chain.yaml")],
        "agents": [],
        "jobs": {"broker": broker, "queue": "bench-jobs"},
    }
    return AppConfig.from_dict(data, base_dir=folder)


async def _accepted(url: str, jobs: int, concurrency: int, body: dict[str, Any]) -> dict[str, Any]:
    ids: list[str] = []
    todo = iter(range(jobs))

    async def client(http: httpx.AsyncClient) -> None:
        for _ in todo:
            answer = await http.post("/v1/workflows/chain/jobs", json=body)
            answer.raise_for_status()
            ids.append(answer.json()["id"])

    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        accepted_s = time.perf_counter() - start
        while True:
            page = (await http.get("/v1/jobs", params={"limit": 500})).json()["jobs"]
            mine = [j for j in page if j["id"] in set(ids)]
            if len(mine) == len(ids) and all(j["status"] == "succeeded" for j in mine):
                break
            failed = [j for j in mine if j["status"] in ("failed", "cancelled")]
            if failed:
                raise RuntimeError(f"jobs failed: {failed[:2]}")
            await asyncio.sleep(0.1)
        drained_s = time.perf_counter() - start
    return {
        "jobs": jobs,
        "concurrency": concurrency,
        "accepted_per_s": round(jobs / accepted_s, 1),
        "drain_s": round(drained_s, 2),
        "finished_per_s": round(jobs / drained_s, 1),
    }


def _overhead(url: str, pairs: int, body: dict[str, Any]) -> dict[str, Any]:
    runs, jobs, extra = [], [], []
    with httpx.Client(base_url=url, timeout=60) as http:
        for _ in range(pairs + 2):  # the first two warm up
            start = time.perf_counter()
            http.post("/v1/workflows/chain/run", json=body).raise_for_status()
            run_s = time.perf_counter() - start
            start = time.perf_counter()
            job = http.post("/v1/workflows/chain/jobs", json=body).json()["id"]
            while http.get(f"/v1/jobs/{job}").json()["status"] != "succeeded":
                time.sleep(0.01)
            job_s = time.perf_counter() - start
            runs.append(run_s)
            jobs.append(job_s)
            extra.append(job_s - run_s)
    runs, jobs, extra = runs[2:], jobs[2:], extra[2:]

    def ms(values: list[float], q: int) -> float:
        return round(statistics.quantiles(values, n=10)[q - 1] * 1000, 1)

    return {
        "pairs": pairs,
        "run_p50_ms": round(statistics.median(runs) * 1000, 1),
        "run_p90_ms": ms(runs, 9),
        "job_p50_ms": round(statistics.median(jobs) * 1000, 1),
        "job_p90_ms": ms(jobs, 9),
        "overhead_p50_ms": round(statistics.median(extra) * 1000, 1),
    }


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    import ray

    from mmserve.deploy.session import ServeSession
    from mmserve.serve.plan import proxy_env
    from mmserve.testing.redis import redis_server

    body = {"inputs": {"image": _image()}}
    points = []
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp) / "redis") as redis_url:
        folder = Path(tmp)
        os.environ.update(proxy_env(_config(folder, "sqlite")))
        ray.init(address="local", num_cpus=max(os.cpu_count() or 2, 4), include_dashboard=False)
        try:
            for name, broker in (("sqlite", "sqlite"), ("redis", redis_url)):
                session = ServeSession(_config(folder, broker), port=args.port)
                url = session.start()
                try:
                    point = {"broker": name}
                    point.update(asyncio.run(_accepted(url, args.jobs, args.concurrency, body)))
                    point.update(_overhead(url, args.pairs, body))
                finally:
                    session.stop()
                print(json.dumps(point), flush=True)
                points.append(point)
        finally:
            ray.shutdown()
    return points


def markdown(points: list[dict[str, Any]], args: argparse.Namespace, wall_s: float) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs"
    lines = [
        "# Jobs: accepted per second, and a job's overhead over a synchronous run",
        "",
        f"`.venv/bin/python -m benchmarks.jobs --jobs {args.jobs} --concurrency "
        f"{args.concurrency} --pairs {args.pairs}` ({machine}; {wall_s:.0f} s in all; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). The fake chain: three caption "
        "steps of the weight-free fake model.",
        "",
        "| broker | accepted/s | drain s | finished/s | run p50 ms | job p50 ms | job p90 ms "
        "| overhead p50 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        lines.append(
            f"| {p['broker']} | {p['accepted_per_s']} | {p['drain_s']} | {p['finished_per_s']} "
            f"| {p['run_p50_ms']} | {p['job_p50_ms']} | {p['job_p90_ms']} "
            f"| {p['overhead_p50_ms']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300, help="jobs submitted for accepted/s")
    parser.add_argument("--concurrency", type=int, default=16, help="clients submitting")
    parser.add_argument("--pairs", type=int, default=40, help="run/job pairs for the overhead")
    parser.add_argument("--port", type=int, default=8790)
    args = parser.parse_args()
    start = time.perf_counter()
    points = run(args)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "jobs.json").write_text(json.dumps(points, indent=2) + "\n", encoding="utf-8")
    text = markdown(points, args, time.perf_counter() - start)
    (RESULTS / "jobs.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
