"""First request after ready, with and without warm-up (issue 16, part 1).

For one app config (default: the tiny profile), this starts ``mmserve serve`` twice as a
subprocess on a free port -- models as configured (warm-up on), then every model with
``warmup: false`` -- and each time, once ``GET /v1/health`` says ready, times the first run of
every shipped workflow and then ``--runs`` more (sequential, one at a time). It reports the
start-up time (process start to ready), each workflow's first run, its steady p50 and their
ratio, and stops the server it started. The store is a fresh folder, filled before the
servers start with ``mmserve index add`` (local mode) from ``examples/``, so that the
retrieval workflows find their collections without any request touching a model first.

Workflows run in a fixed order on one server, so a later workflow's models may have been
used by an earlier one (``describe`` after ``caption`` and ``answer``): its "first" is the
first of that workflow, not of its models. ``caption`` and ``answer`` are the first users of
their models, ``classify`` of CLIP, ``caption_then_retrieve`` of the sentence encoder.

    .venv/bin/python -m benchmarks.warmup                      # tiny profile, 10 runs each
    .venv/bin/python -m benchmarks.warmup --runs 5 --modes warm
    .venv/bin/python -m benchmarks.warmup --profile random --runs 5

``--profile random``: the app of the memory benchmark (:data:`benchmarks.suite.memory.RANDOM_APP`:
full-size CLIP ViT-B/32, BLIP base captioning and BLIP base VQA with random weights, the
hub checkpoints' shapes) and the tiny profile's sentence encoder. Results:
``benchmarks/results/warmup.json`` and ``warmup.md`` (``warmup-random.*`` for that profile).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.suite.memory import RANDOM_APP
from benchmarks.suite.servers import ServerProcess, child_env

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
RESULTS = ROOT / "benchmarks" / "results"
MMSERVE = str(Path(sys.executable).with_name("mmserve"))


def _image(name: str) -> str:
    return base64.b64encode((EXAMPLES / "images" / name).read_bytes()).decode()


#: Every shipped workflow (workflows/) with sample inputs from examples/, in run order.
WORKFLOWS: list[tuple[str, dict[str, Any]]] = [
    ("caption", {"image": _image("red_circle.png")}),
    ("answer", {"image": _image("blue_square.png"), "question": "what colour is the shape?"}),
    ("classify", {"image": _image("green_triangle.png"), "labels": ["circle", "square"]}),
    ("search_images", {"text": "a red circle", "collection": "images", "top_k": 3}),
    ("caption_then_retrieve", {"image": _image("yellow_sun.png"), "collection": "captions"}),
    ("retrieve_then_answer", {"question": "what colour is the circle?", "collection": "images"}),
    ("describe", {"image": _image("yellow_sun.png")}),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def random_profile(folder: Path) -> Path:
    """The random:// app as a config file in ``folder`` (a LanceDB store, filled locally)."""
    tiny = yaml.safe_load((ROOT / "deployments" / "tiny.yaml").read_text())
    data = {
        **RANDOM_APP,
        "models": {**RANDOM_APP["models"], "sentence": tiny["models"]["sentence"]},
        "store": {"kind": "lancedb"},
        "agents": [],
    }
    path = folder / "random-profile.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_config(source: Path, folder: Path, *, warmup: bool) -> Path:
    """A copy of ``source`` with its store in ``folder`` and (optionally) warm-up off."""
    data: dict[str, Any] = yaml.safe_load(source.read_text())
    data["store"] = {**data.get("store", {}), "path": str(folder / "store")}
    data["workflows"] = [str(ROOT / "workflows")]
    for model in data["models"].values():
        model["warmup"] = warmup
    path = folder / f"app-{'warm' if warmup else 'cold'}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def fill_store(config: Path) -> None:
    """The collections the retrieval workflows search, added in local mode."""
    for collection, source in (("images", "images"), ("captions", "captions.jsonl")):
        subprocess.run(
            [MMSERVE, "index", "add", collection, str(EXAMPLES / source), "--config", str(config)],
            check=True,
            env=child_env(),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            timeout=900,
        )


def time_workflows(base: str, runs: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    with httpx.Client(timeout=300) as client:
        for name, inputs in WORKFLOWS:
            seconds = []
            for _ in range(runs + 1):
                started = time.perf_counter()
                response = client.post(f"{base}/v1/workflows/{name}/run", json={"inputs": inputs})
                seconds.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"{name}: HTTP {response.status_code}: {response.text}")
            steady = statistics.median(seconds[1:])
            results[name] = {
                "first_s": seconds[0],
                "steady_p50_s": steady,
                "ratio": seconds[0] / steady,
            }
            print(f"  {name}: first {seconds[0]:.3f} s, p50 {steady:.3f} s", flush=True)
    return results


def measure(config: Path, runs: int, log: Path) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = ServerProcess(
        system=config.stem,
        argv=[MMSERVE, "serve", "--config", str(config), "--port", str(port)],
        url=base,
        body_for=lambda _: {},
        log_path=log,
        health_url=f"{base}/v1/health",
        ready_timeout_s=900,
    )
    try:
        server.start()
        print(f"{config.stem}: ready after {server.startup_s:.1f} s", flush=True)
        workflows = time_workflows(base, runs)
    finally:
        server.stop()
    return {"startup_s": server.startup_s, "workflows": workflows}


def write_markdown(document: dict[str, Any], path: Path) -> None:
    lines = [
        f"`{document['command']}` -- {document['config']}, {document['runs']} steady runs, "
        f"load average before: {document['loadavg']}",
        "",
        "| warm-up | start-up s | workflow | first s | steady p50 s | first / p50 |",
        "|---|---|---|---|---|---|",
    ]
    for mode, result in document["modes"].items():
        for name, row in result["workflows"].items():
            lines.append(
                f"| {mode} | {result['startup_s']:.1f} | {name} | {row['first_s']:.3f} | "
                f"{row['steady_p50_s']:.3f} | {row['ratio']:.1f} |"
            )
    path.write_text("\n".join(lines) + "\n")


def save(document: dict[str, Any], profile: str, *, merge: bool) -> None:
    """Write the results; ``merge``: keep the modes of the file this run did not measure."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "warmup-random" if profile == "random" else "warmup"
    path = RESULTS / f"{stem}.json"
    if merge and path.exists():
        earlier = json.loads(path.read_text())
        document = {**document, "modes": {**earlier["modes"], **document["modes"]}}
        document["command"] = f"{earlier['command']}; then {document['command']}"
    path.write_text(json.dumps(document, indent=2) + "\n")
    write_markdown(document, RESULTS / f"{stem}.md")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config", type=Path, default=ROOT / "deployments" / "tiny.yaml")
    parser.add_argument(
        "--profile", choices=["config", "random"], default="config", help="random: random://"
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--modes", nargs="+", choices=["warm", "cold"], default=["warm", "cold"])
    parser.add_argument(
        "--merge", action="store_true", help="keep the other modes of the results file"
    )
    args = parser.parse_args(argv)
    document: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks.warmup", *(argv or sys.argv[1:])]),
        "config": "random:// profile (benchmarks.suite.memory.RANDOM_APP + sentence)"
        if args.profile == "random"
        else str(args.config.resolve().relative_to(ROOT)),
        "runs": args.runs,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "modes": {},
    }
    with tempfile.TemporaryDirectory(prefix="mmserve-warmup-") as tmp:
        folder = Path(tmp)
        source = random_profile(folder) if args.profile == "random" else args.config
        configs = {mode: write_config(source, folder, warmup=mode == "warm") for mode in args.modes}
        fill_store(next(iter(configs.values())))
        for mode, config in configs.items():
            try:
                document["modes"][mode] = measure(config, args.runs, folder / f"{mode}.log")
            except RuntimeError as exc:  # e.g. Ray timing out at start on a busy machine
                print(f"{mode}: {exc}; once more", flush=True)
                document["modes"][mode] = measure(config, args.runs, folder / f"{mode}-2.log")
            save(document, args.profile, merge=args.merge)  # each mode as it is measured
    stem = "warmup-random" if args.profile == "random" else "warmup"
    print((RESULTS / f"{stem}.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
