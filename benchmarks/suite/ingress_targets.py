"""The targets of issue 14 for a model in the ingress (``mmserve-ingress``, ``placement:
ingress``; ``mmserve-ingress-haproxy``, the same behind Serve's HAProxy ingress), read from
one preset's results. (Separate deployments against the hand-written Ray Serve app,
">= 0.9x", is among :func:`benchmarks.suite.report.throughput_targets`.)"""

from __future__ import annotations

import itertools
from typing import Any

from benchmarks.suite.report import _bare, _point, _target

SYSTEMS = ("mmserve-ingress", "mmserve-ingress-haproxy")
#: The peers a model in the ingress must match at concurrency 16.
PEERS = {
    "litserve": "LitServe",
    "fastapi": "plain FastAPI",
    "ray": "hand-written Ray Serve",
    "ray-haproxy": "hand-written Ray Serve, HAProxy",
}


def ingress_targets(
    preset: str,
    workflows: tuple[str, ...],
    results: dict[str, Any],
    *,
    level: int = 16,
    system: str = "mmserve-ingress",
) -> list[dict[str, Any]]:
    """Added latency (1 step <= 5 ms over the bare call, each extra step <= 1 ms) on the
    chain presets; c=1 p50 <= plain FastAPI's + 5 ms and c=``level`` throughput >= the best
    peer on the throughput presets; and, for reading, against mmserve's separate deployment
    and the hand-written Ray Serve app behind the same front door."""
    out: list[dict[str, Any]] = []
    name = f"[{preset}] {system}"
    # read against the hand-written app and mmserve's separate deployment behind the same door
    door = "-haproxy" if system.endswith("-haproxy") else ""
    ray, separate = f"ray{door}", f"mmserve{door}"
    bare = _bare(results, batched=False)
    one = _point(results, system, workflows[0], 1)
    if len(workflows) > 1 and bare and one:  # the chain (overhead) preset
        added = one["p50_ms"] - bare["p50_ms"]
        detail = f"{system} p50 {one['p50_ms']:.2f} ms, bare call p50 {bare['p50_ms']:.2f} ms"
        out.append(
            _target(
                f"{name} added latency, c=1, 1 step",
                "p50 <= 5 ms",
                f"{added:+.2f} ms",
                added <= 5.0,
                detail,
            )
        )
        for previous, current in itertools.pairwise(workflows):
            a, b = _point(results, system, previous, 1), _point(results, system, current, 1)
            if a and b:
                extra = b["p50_ms"] - a["p50_ms"]
                out.append(
                    _target(
                        f"{name} extra step ({previous} -> {current})",
                        "<= 1 ms more",
                        f"{extra:+.2f} ms",
                        extra <= 1.0,
                        "p50 difference; includes the extra step's model call "
                        f"(the bare call: {bare['p50_ms']:.2f} ms)",
                    )
                )
        peer = _point(results, ray, None, 1)
        if peer:
            over_ray = one["p50_ms"] - peer["p50_ms"]
            out.append(
                _target(
                    f"{name} c=1, 1 step vs {PEERS[ray]}",
                    "(for reading)",
                    f"{over_ray:+.2f} ms",
                    None,
                    f"{one['p50_ms']:.2f} ms vs {peer['p50_ms']:.2f} ms "
                    f"(+{peer['p50_ms'] - bare['p50_ms']:.2f} ms over the bare call)",
                )
            )
    fastapi = _point(results, "fastapi", None, 1)
    if one and fastapi:
        over = one["p50_ms"] - fastapi["p50_ms"]
        out.append(
            _target(
                f"{name} c=1 vs plain FastAPI",
                "p50 <= FastAPI's + 5 ms",
                f"{over:+.2f} ms",
                over <= 5.0,
                f"{one['p50_ms']:.2f} ms vs {fastapi['p50_ms']:.2f} ms",
            )
        )
    loaded = _point(results, system, workflows[0], level)
    peers = {
        peer: point for peer in PEERS if (point := _point(results, peer, None, level)) is not None
    }
    if loaded and peers:
        best = max(peers, key=lambda peer: peers[peer]["throughput"])
        ratio = loaded["throughput"] / peers[best]["throughput"]
        detail = ", ".join(f"{PEERS[p]} {peers[p]['throughput']:.1f}/s" for p in peers)
        detail = f"{loaded['throughput']:.1f}/s; {detail}"
        out.append(
            _target(
                f"{name} c={level} vs the best of {', '.join(PEERS.values())}",
                ">= 1.0x",
                f"{ratio:.2f}x ({PEERS[best]})",
                ratio >= 1.0,
                detail,
            )
        )
    for level_ in (1, level):
        ours = _point(results, system, workflows[0], level_)
        theirs = _point(results, separate, workflows[0], level_)
        if ours and theirs:
            detail = (
                f"p50 {ours['p50_ms']:.2f} vs {theirs['p50_ms']:.2f} ms, "
                f"{ours['throughput']:.1f}/s vs {theirs['throughput']:.1f}/s"
            )
            gain = theirs["p50_ms"] - ours["p50_ms"]
            out.append(
                _target(
                    f"{name} c={level_} vs {separate} (separate deployment)",
                    "(for reading)",
                    f"p50 {gain:+.2f} ms saved",
                    None,
                    detail,
                )
            )
    return out


__all__ = ["ingress_targets"]
