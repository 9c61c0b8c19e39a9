"""Results: the machine and versions, the targets of issue 6, and the JSON/markdown/PNG files."""

from __future__ import annotations

import importlib.metadata
import itertools
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import psutil

from benchmarks.suite.servers import REPO_ROOT

_PACKAGES = (
    "mmserve",
    "torch",
    "transformers",
    "ray",
    "fastapi",
    "uvicorn",
    "starlette",
    "litserve",
    "httpx",
    "pydantic",
    "numpy",
)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in _PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = "unknown"
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": _gpu(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "git_commit": commit,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }


def _gpu() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


# -- targets ---------------------------------------------------------------------------------


def _point(
    results: dict[str, Any], system: str, variant: str | None, concurrency: int | None
) -> dict[str, Any] | None:
    for point in results.get(system, {}).get("points", []):
        if variant is not None and point.get("variant") != variant:
            continue
        if concurrency is not None and point.get("concurrency") != concurrency:
            continue
        return dict(point)
    return None


def _bare(results: dict[str, Any], batched: bool) -> dict[str, Any] | None:
    for point in results.get("bare", {}).get("points", []):
        if (point.get("batch", 1) > 1) == batched:
            return dict(point)
    return None


def _target(name: str, goal: str, value: str, met: bool | None, detail: str = "") -> dict[str, Any]:
    return {"target": name, "goal": goal, "measured": value, "met": met, "detail": detail}


def overhead_targets(
    preset: str, workflows: tuple[str, ...], results: dict[str, Any], *, system: str = "mmserve"
) -> list[dict[str, Any]]:
    """Added latency at concurrency 1 over HTTP, and per extra step (from the chain)."""
    out = []
    bare = _bare(results, batched=False)
    one = _point(results, system, workflows[0], 1)
    if bare and one:
        added = one["p50_ms"] - bare["p50_ms"]
        detail = f"{system} p50 {one['p50_ms']:.2f} ms, bare call p50 {bare['p50_ms']:.2f} ms"
        for peer, label in (
            ("ray", "hand-written Ray Serve"),
            ("ray-grpc", "the same, gRPC"),
            ("ray-haproxy", "the same, HAProxy"),
        ):
            ray = _point(results, peer, None, 1)
            if ray:
                detail += f"; {label} p50 {ray['p50_ms']:.2f} ms"
                detail += f" (+{ray['p50_ms'] - bare['p50_ms']:.2f} ms)"
        name = f"[{preset}] {system} added latency, c=1, 1 step, HTTP"
        out.append(_target(name, "p50 <= 5 ms", f"{added:+.2f} ms", added <= 5.0, detail))
    for previous, current in itertools.pairwise(workflows):
        a = _point(results, system, previous, 1)
        b = _point(results, system, current, 1)
        if a and b:
            extra = b["p50_ms"] - a["p50_ms"]
            name = f"[{preset}] {system} extra step ({previous} -> {current})"
            detail = "p50 difference; includes the extra step's model call"
            out.append(_target(name, "<= 3 ms more", f"{extra:+.2f} ms", extra <= 3.0, detail))
    return out


def throughput_targets(
    preset: str, workflow: str, results: dict[str, Any], *, system: str = "mmserve", level: int = 16
) -> list[dict[str, Any]]:
    """The throughput targets at concurrency ``level`` for a served ``system``."""
    out: list[dict[str, Any]] = []
    served = _point(results, system, workflow, level)
    if served is None:
        return out
    tput, p95 = served["throughput"], served["p95_ms"]
    name = f"[{preset}] {system}"

    # What batching itself can give on this machine: the bare loop, batched over unbatched.
    loop_batched, loop_single = _bare(results, batched=True), _bare(results, batched=False)
    ceiling = ""
    if loop_batched and loop_single and loop_single["throughput"]:
        gain = loop_batched["throughput"] / loop_single["throughput"]
        ceiling = f"; bare loop batched/unbatched = {gain:.2f}x"

    def versus(other: str, label: str, goal: str, minimum: float, *, p95_too: bool) -> None:
        point = (
            _bare(results, batched=True) if other == "bare" else _point(results, other, None, level)
        )
        if point is None:
            return
        ratio = tput / point["throughput"] if point["throughput"] else float("inf")
        met = ratio >= minimum and (not p95_too or p95 <= point["p95_ms"])
        detail = (
            f"{tput:.1f}/s p95 {p95:.0f} ms vs {point['throughput']:.1f}/s "
            f"p95 {point['p95_ms']:.0f} ms"
        )
        if other in ("mmserve-nobatch", "fastapi"):
            detail += ceiling
        out.append(_target(f"{name} c={level} vs {label}", goal, f"{ratio:.2f}x", met, detail))

    versus("bare", "bare batched loop", ">= 0.8x", 0.8, p95_too=False)
    versus("ray", "hand-written Ray Serve", ">= 0.9x", 0.9, p95_too=False)
    versus("ray-grpc", "hand-written Ray Serve, gRPC proxy", ">= 0.9x", 0.9, p95_too=False)
    versus("ray-haproxy", "hand-written Ray Serve, HAProxy", ">= 0.9x", 0.9, p95_too=False)
    versus("mmserve-nobatch", "batching off", ">= 1.3x at equal or lower p95", 1.3, p95_too=True)
    versus("fastapi", "plain FastAPI", ">= 2x", 2.0, p95_too=False)
    versus("litserve", "LitServe", ">= 1.0x at the same p95", 1.0, p95_too=True)
    return out


# -- files -----------------------------------------------------------------------------------


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def _row(point: dict[str, Any]) -> str:
    cells = [
        point.get("system", ""),
        point.get("variant", ""),
        point.get("concurrency", "-"),
        f"{point['throughput']:.1f}",
        f"{point['p50_ms']:.1f}",
        f"{point['p95_ms']:.1f}",
        f"{point['p99_ms']:.1f}",
        f"{point.get('cpu_cores', 0):.2f}",
        f"{point['cpu_cores'] * 1000 / point['throughput']:.1f}"
        if point.get("throughput")
        else "-",
        f"{point.get('loadgen_cpu_cores', 0):.2f}" if "loadgen_cpu_cores" in point else "-",
        f"{point.get('peak_rss_mb', 0):.0f}",
        point.get("mean_batch", point.get("batch", "-")),
        point.get("errors", 0),
    ]
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def markdown(document: dict[str, Any]) -> str:
    lines = [f"# {document['title']}", "", f"Command: `{document['command']}`", ""]
    lines += [f"Started {document['started_utc']} UTC, took {document['elapsed_s']:.0f} s.", ""]
    lines += [document.get("note", ""), ""]
    m = document["machine"]
    lines += [
        f"Machine: {m['cpu']}, {m['logical_cores']} logical cores, {m['memory_gb']} GB, "
        f"GPU: {m['gpu'] or 'none'}; {m['os']}; Python {m['python']}; commit "
        f"{m['git_commit']}; load average at start {m['load_average_at_start']}.",
        "",
    ]
    lines += ["Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v), ""]
    if document.get("targets"):
        lines += [
            "## Targets",
            "",
            "| target | goal | measured | met | detail |",
            "|---|---|---|---|---|",
        ]
        for t in document["targets"]:
            met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
            lines.append(
                f"| {t['target']} | {t['goal']} | {t['measured']} | {met} | {t['detail']} |"
            )
        lines.append("")
    header = (
        "| system | variant | conc. | items/s | p50 ms | p95 ms | p99 ms | server CPU cores "
        "| CPU ms/item "
        "| loadgen CPU | peak RSS MB | mean batch | errors |"
    )
    for name, preset in document["presets"].items():
        lines += [
            f"## {name}: {preset['description']}",
            "",
            f"Serving shape: `{preset['shape']}`",
            "",
        ]
        lines += [header, "|" + "---|" * 13]
        for result in preset["systems"].values():
            for point in result.get("points", []):
                lines.append(_row(point))
        lines += [
            "",
            "| system | start-up s | processes | idle RSS MB | idle PSS MB | error |",
            "|---|---|---|---|---|---|",
        ]
        for system, result in preset["systems"].items():
            lines.append(
                f"| {system} | {result.get('startup_s', '-')} | {result.get('processes', 1)} | "
                f"{result.get('idle_rss_mb', '-')} | {result.get('idle_pss_mb', '-')} | "
                f"{result.get('error', '')[:200]} |"
            )
        lines.append("")
    for section in document.get("sections", []):
        lines += [section, ""]
    return "\n".join(lines)


def plot(document: dict[str, Any], path: Path) -> None:
    """Latency (p50 and p95) against throughput, one panel per preset, one line per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    presets = document["presets"]
    fig, axes = plt.subplots(1, len(presets), figsize=(7 * len(presets), 5.5), squeeze=False)
    for ax, (name, preset) in zip(axes[0], presets.items(), strict=True):
        ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)  # 20 lines, none alike
        for system, result in preset["systems"].items():
            by_variant: dict[str, list[dict[str, Any]]] = {}
            for point in result.get("points", []):
                by_variant.setdefault(str(point.get("variant")), []).append(point)
            for variant, points in by_variant.items():
                label = system if len(by_variant) == 1 else f"{system} {variant}"
                xs = [p["throughput"] for p in points]
                ys = [p["p95_ms"] for p in points]
                line = ax.plot(xs, ys, marker="o", label=label)[0]
                for p in points:
                    ax.annotate(
                        str(p.get("concurrency", p.get("batch", ""))),
                        (p["throughput"], p["p95_ms"]),
                        fontsize=7,
                        color=line.get_color(),
                        xytext=(3, 3),
                        textcoords="offset points",
                    )
        xs_all = [p["throughput"] for r in preset["systems"].values() for p in r.get("points", [])]
        if xs_all and min(xs_all) > 0 and max(xs_all) / min(xs_all) > 30:
            ax.set_xscale("log")
        ax.set_xlabel("throughput (items/s)")
        ax.set_ylabel("p95 latency (ms, log)")
        ax.set_yscale("log")
        ax.set_title(f"{name}: p95 latency vs throughput (labels: concurrency / batch)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        document["title"] + f" - {document['machine']['logical_cores']} cores, "
        f"GPU: {document['machine']['gpu'] or 'none'}",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
