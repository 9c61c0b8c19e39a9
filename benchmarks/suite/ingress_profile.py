"""Where a request's time goes in the ingress replica, sampled with py-spy under load.

Starts ``mmserve serve`` for a preset with the model placed in the ingress (``placement:
ingress``; ``--placement deployment`` for a model deployment of its own), drives it at each
concurrency with the suite's load generator while ``py-spy record`` samples the ingress
replica (every thread, non-blocking), and prints, per concurrency, the share of the replica's
samples spent in each of a few named parts (:data:`PARTS`: the first part whose marker is on
a sample's stack takes it) and the functions with the most samples of their own.

    python -m benchmarks.suite.ingress_profile --preset minilm --concurrency 1,16

py-spy (``pip install py-spy``) samples a process this one started without root. Shares are
of the samples taken while the replica's threads were running (idle waits are left out), so
on a shared machine they say where the replica's CPU goes, not the wall time of a request.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from benchmarks.image_path import _start
from benchmarks.suite.loadgen import run_load
from benchmarks.suite.presets import ServeShape, get_preset, make_inputs
from benchmarks.suite.servers import mmserve_server

#: (part, marker on the stack), first match wins: a sample in the model's forward pass under
#: the engine is the model's, not the engine's.
PARTS = (
    ("model forward (torch)", "torch/nn/modules/module.py"),
    ("tokenizer", "tokenization_utils"),
    ("model backend, rest", "mmserve/models/"),
    ("batching (@serve.batch)", "ray/serve/batching.py"),
    ("workflow engine", "mmserve/workflow/"),
    ("mmserve HTTP routes + checks", "mmserve/http/"),
    ("mmserve Serve replicas", "mmserve/serve/"),
    ("JSON encode/decode", "json"),
    ("pydantic validation", "pydantic"),
    ("FastAPI / Starlette", "fastapi/"),
    ("Serve replica + ASGI bridge", "ray/serve/"),
    ("Ray core (gRPC, core worker)", "ray/"),
    ("asyncio event loop", "asyncio/"),
)


def ingress_pid(root: psutil.Process) -> int:
    """The ingress replica among ``root``'s descendants."""
    for child in root.children(recursive=True):
        try:
            if "ServeReplica:mmserve:ingress" in " ".join(child.cmdline()):
                return child.pid
        except psutil.Error:
            continue
    raise RuntimeError("no ingress replica found")


def summarise(raw: Path, top: int) -> str:
    """The parts' shares and the top self-time functions of a py-spy raw (collapsed) file."""
    parts: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        part = next((name for name, marker in PARTS if marker in stack), "other")
        parts[part] += samples
        leaf = stack.rsplit(";", 1)[-1]
        leaves[leaf.replace(str(Path.home()), "~")[:110]] += samples
    lines = [f"  {total} samples (running threads only)"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in parts.most_common()]
    lines.append("  top functions (self):")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in leaves.most_common(top)]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.suite.ingress_profile", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--preset", default="minilm")
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--placement", default="ingress", choices=("ingress", "deployment"))
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second.")
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--port", type=int, default=8191)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    preset = get_preset(args.preset)
    inputs = make_inputs(preset)
    server = mmserve_server(
        preset, ServeShape(wait_ms=0.0), inputs, system=f"profile-{args.placement}",
        port=args.port, workdir=Path("benchmarks/results/work/ingress-profile"),
        placement=args.placement,
    )  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="ingress_profile_"))
    try:
        _start(server)  # (again when Ray's node misses its start-up deadline under load)
        pid = ingress_pid(psutil.Process(server.pid))
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            raw = folder / f"c{concurrency}.txt"
            record = subprocess.Popen(
                [py_spy, "record", "--pid", str(pid), "--threads", "--nonblocking", "-r",
                 str(args.rate), "-d", str(int(args.duration)), "-f", "raw", "-o", str(raw)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            point = asyncio.run(
                run_load(
                    server.target(preset.workflows[0]),
                    server.body_for,
                    concurrency=concurrency,
                    duration_s=args.duration,
                    warmup_s=0.0,
                )
            )
            record.wait(timeout=args.duration + 60)
            print(
                f"{preset.name} ({args.placement}) c={concurrency}: "
                f"{point['throughput']:.1f} items/s, p50 {point['p50_ms']:.1f} ms"
            )
            print(summarise(raw, args.top), flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
