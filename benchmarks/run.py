"""mmserve against the bare model and its peers, in one process tree and one sitting.

    .venv/bin/python -m benchmarks.run --quick            # < 5 minutes on a 2-core CPU
    .venv/bin/python -m benchmarks.run                    # the full suite (~15 minutes)
    .venv/bin/python -m benchmarks.run --mode memory      # idle apps + a 10-minute soak

Writes ``<out>/<name>.json``, ``<name>.md`` and ``<name>.png`` (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.suite import report
from benchmarks.suite.ingress_targets import SYSTEMS as ingress_systems
from benchmarks.suite.ingress_targets import ingress_targets
from benchmarks.suite.orchestrate import (
    ALL_SYSTEMS,
    DEFAULT_SYSTEMS,
    EXTRA_SYSTEMS,
    Plan,
    log,
    run_preset,
)
from benchmarks.suite.presets import PRESETS, ServeShape, get_preset

NOTE = (
    "Every system ran on the same machine as the load generator, one system at a time, over "
    "loopback. On a 2-core CPU the load generator, Ray's proxy, the ingress and the model "
    "replica all share the same 2 cores as the model, so serving overhead costs model "
    "throughput directly; figures from a machine shared with other work are noisy."
)


def _levels(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--mode", choices=("suite", "memory"), default="suite")
    parser.add_argument("--quick", action="store_true", help="Short points, concurrency 1 and 16.")
    parser.add_argument(
        "--presets", default="minilm,fake", help=f"Comma-separated presets: {', '.join(PRESETS)}."
    )
    parser.add_argument(
        "--systems",
        default=",".join(DEFAULT_SYSTEMS),
        help=f"Comma-separated subset of {', '.join(ALL_SYSTEMS)} (default: all but "
        f"{', '.join(EXTRA_SYSTEMS)}).",
    )
    parser.add_argument("--duration", type=float, help="Seconds measured per point.")
    parser.add_argument("--warmup", type=float, help="Seconds of warm-up per point.")
    parser.add_argument(
        "--max-requests", type=int, default=1_000_000, help="End a point after this many answers."
    )
    parser.add_argument("--concurrency", type=_levels, help="e.g. 1,4,16,64")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--wait-ms", type=float, default=0.0)
    parser.add_argument("--cpus", type=float, default=2.0, help="CPUs of the model replica.")
    parser.add_argument("--gpus", type=float, default=0.0, help="GPUs of the model replica.")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--text-words", type=int, default=300)
    parser.add_argument("--soak-seconds", type=float, default=600.0)
    parser.add_argument("--soak-concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--name", help="File name stem (default: suite, suite-quick, memory).")
    parser.add_argument("--base-port", type=int, default=8100)
    parser.add_argument("--note", default="", help="Extra note recorded with the results.")
    parser.add_argument(
        "--image-path-runs",
        type=int,
        help="Requests per upload size of the image path benchmark (benchmarks/image_path.py; "
        "default 15, --quick 7; 0 skips it).",
    )
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace, workdir: Path) -> Plan:
    shape = ServeShape(
        max_batch=args.max_batch,
        wait_ms=args.wait_ms,
        cpus=args.cpus,
        gpus=args.gpus,
        device=args.device,
        dtype=args.dtype,
        max_ongoing=max(64, args.max_batch),
    )
    quick = args.quick
    systems = tuple(s for s in args.systems.split(",") if s)
    unknown = sorted(set(systems) - set(ALL_SYSTEMS))
    if unknown:
        raise SystemExit(f"unknown systems {unknown}; systems: {', '.join(ALL_SYSTEMS)}")
    return Plan(
        duration_s=args.duration or (3.0 if quick else 10.0),
        warmup_s=args.warmup if args.warmup is not None else (1.0 if quick else 3.0),
        concurrency=args.concurrency or ((1, 16) if quick else (1, 4, 16, 64)),
        systems=systems,
        shape=shape,
        text_words=args.text_words,
        workdir=workdir,
        base_port=args.base_port,
        max_requests=args.max_requests,
    )


def _concurrency_for(preset_name: str, plan: Plan) -> dict[str, tuple[int, ...]]:
    if get_preset(preset_name).throughput:
        return {"api": ()}  # the in-process API measures overhead: the fake preset's job
    # The overhead preset: concurrency 1 only, and no unbatched app or batching-less peers.
    return {
        "local": (1,),
        "mmserve": (1,),
        "mmserve-ingress": (1,),
        "ray": (1,),
        "mmserve-haproxy": (1,),
        "mmserve-ingress-haproxy": (1,),
        "ray-haproxy": (1,),
        "mmserve-actor": (1,),
        "ray-grpc": (1,),
        "mmserve-nobatch": (),
        "fastapi": (),
        "litserve": (),
    }


def run_suite(args: argparse.Namespace, document: dict[str, Any], stem: Path) -> None:
    plan = make_plan(args, stem.parent / "work" / stem.name)
    for name in [p for p in args.presets.split(",") if p]:
        preset = get_preset(name)
        results: dict[str, Any] = {}
        document["presets"][name] = {
            "description": preset.description,
            "shape": {
                **plan.shape.__dict__,
                "duration_s": plan.duration_s,
                "warmup_s": plan.warmup_s,
                "text_words": plan.text_words,
            },
            "systems": results,
        }
        run_preset(
            preset,
            plan,
            results,
            concurrency_for=_concurrency_for(name, plan),
            after_each=lambda: write_all(document, stem),
        )
        for system in ("mmserve", "mmserve-actor", "mmserve-haproxy"):
            document["targets"] += report.overhead_targets(
                name, preset.workflows, results, system=system
            )
            if preset.throughput:
                document["targets"] += report.throughput_targets(
                    name, preset.workflows[0], results, system=system
                )
        for system in ingress_systems:
            document["targets"] += ingress_targets(name, preset.workflows, results, system=system)
        write_all(document, stem)
    run_image_path(args, document, stem)


def run_image_path(args: argparse.Namespace, document: dict[str, Any], stem: Path) -> None:
    """The image path benchmark (issue 14) as a section of the report."""
    runs = args.image_path_runs if args.image_path_runs is not None else 7 if args.quick else 15
    if runs <= 0:
        return
    from benchmarks import image_path

    log(f"image path: classify on deployments/tiny.yaml, {runs} runs per upload size")
    document["image_path"] = image_path.measure(runs)
    document.setdefault("sections", []).append(image_path.markdown(document["image_path"]))
    write_all(document, stem)


def run_memory(args: argparse.Namespace, document: dict[str, Any], stem: Path) -> None:
    from benchmarks.suite import memory

    workdir = stem.parent / "work" / stem.name
    plan = make_plan(args, workdir)
    repo = Path(__file__).resolve().parent.parent
    document["memory"] = {"idle": {}}
    idle = document["memory"]["idle"]
    idle["tiny app (deployments/tiny.yaml)"] = memory.idle_app(
        "tiny", repo / "deployments" / "tiny.yaml", port=args.base_port + 1, workdir=workdir
    )
    write_all(document, stem)
    idle["random:// app (full-size CLIP, BLIP, BLIP-VQA)"] = memory.idle_app(
        "random", memory.random_app_config(workdir), port=args.base_port + 2, workdir=workdir
    )
    write_all(document, stem)
    if args.soak_seconds > 0:
        preset = get_preset(args.presets.split(",")[0])
        document["memory"]["soak"] = memory.soak(
            preset, plan, seconds=args.soak_seconds, concurrency=args.soak_concurrency
        )
    document["sections"] = [memory.memory_markdown(document["memory"])]


def write_all(document: dict[str, Any], stem: Path) -> None:
    document["elapsed_s"] = time.perf_counter() - document["_t0"]
    clean = {k: v for k, v in document.items() if not k.startswith("_")}
    report.write_json(stem.with_suffix(".json"), clean)
    if document.get("mode") == "memory":
        from benchmarks.suite.memory import memory_markdown

        clean["sections"] = [memory_markdown(document.get("memory", {}))]
    stem.with_suffix(".md").write_text(report.markdown(clean) + "\n", encoding="utf-8")
    if any(p["systems"] for p in document["presets"].values()):
        report.plot(clean, stem.with_suffix(".png"))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stem_name = args.name or (
        "memory" if args.mode == "memory" else "suite-quick" if args.quick else "suite"
    )
    stem = args.out / stem_name
    command = "python -m benchmarks.run " + shlex.join(sys.argv[1:] if argv is None else argv)
    document: dict[str, Any] = {
        "title": f"mmserve benchmarks ({stem_name})",
        "mode": args.mode,
        "command": command.strip(),
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "machine": report.machine(),
        "note": " ".join(filter(None, [NOTE, args.note])),
        "presets": {},
        "targets": [],
        "_t0": time.perf_counter(),
    }
    log(f"{command} -> {stem}.json/.md/.png")
    if args.mode == "memory":
        run_memory(args, document, stem)
    else:
        run_suite(args, document, stem)
    write_all(document, stem)
    log(f"done in {document['elapsed_s']:.0f} s: {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
