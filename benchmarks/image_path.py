"""The image path (issue 14): what a photo costs, by upload size, before and after the reduction.

``classify`` on deployments/tiny.yaml, served (``mmserve serve``), sequential requests: the
same photo re-encoded as JPEG at 224x224, 1280x960, 1920x1080 and 4000x3000, p50 of N of the
request (the image base64 in the JSON body, and again as a multipart upload) and of the step's
wall time (its trace), and the bytes that cross to the model
replica per image. Two servers in one sitting:

* ``after``: this code (the door decodes a large JPEG in draft mode; the model gets its input
  size, reduced in the ingress);
* ``before``: the same code with main's image path put back by a ``sitecustomize`` overlay
  (full decode at the door, full pixels sent to the replica, the processor resizes there).

Bytes crossing are the pickled item the gateway hands to the model handle (what Ray
serialises), computed in this process with the same functions, for the tiny CLIP and for the
input sizes of the real checkpoints (CLIP ViT-B/32: 224; BLIP: 384x384; ViLT: 384-640). A
second table compares, for a model-sized image, raw pixels against a PNG or JPEG encoding.

    .venv/bin/python -m benchmarks.image_path              # N = 15
    .venv/bin/python -m benchmarks.image_path --runs 5     # quick
    .venv/bin/python -m benchmarks.run --quick             # includes it (N = 7)
    # on a GPU (benchmarks/gpu/run_gpu.sh): full-size CLIP ViT-B/32, fp16, images/s
    .venv/bin/python -m benchmarks.image_path --source random://clip-vit-b32 --device cuda \
        --dtype float16 --gpus 1 --max-batch 64 --throughput 32
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import pickle
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from PIL import Image

from benchmarks.photos import jpeg, synthetic_photo
from benchmarks.suite.servers import ServerProcess, _mmserve_command
from benchmarks.warmup import free_port

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SIZES = [(224, 224), (1280, 960), (1920, 1080), (4000, 3000)]
LABELS = ["cat", "dog", "car", "bird", "person"]

#: main's image path, put back in every Python process of the ``before`` server (Ray's workers
#: inherit PYTHONPATH): the door decodes fully, the gateway sends the full pixels.
BEFORE_OVERLAY = '''\
"""Benchmark overlay: the image path as it was before the reduction (issue 14). Patches the
two modules when (and only if) a process imports them, so Ray's own processes start as fast."""
import importlib.abc
import importlib.machinery
import sys

_NAMES = ("mmserve.media.deferred", "mmserve.media.sizes")


def _patch(module):
    if module.__name__ == "mmserve.media.deferred":
        from mmserve.media import ImageLimits, decode_image

        def open_upload(data, *, name="image", limits=None):
            return decode_image(data, name=name, limits=limits or ImageLimits())

        module.open_upload = open_upload
    else:
        module.for_model = lambda image, needs: image


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in _NAMES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Finder())
'''


def uploads() -> dict[str, bytes]:
    """One photo, re-encoded as JPEG (quality 90) at each of :data:`SIZES`."""
    photo = synthetic_photo(*SIZES[-1], seed=14)
    return {
        f"{w}x{h}": jpeg(photo.resize((w, h), Image.Resampling.LANCZOS), quality=90)
        for w, h in SIZES
    }


def crossing_bytes(data: bytes) -> dict[str, int]:
    """Pickled bytes of the image the gateway sends a model, before and after the reduction,
    for the tiny CLIP and the real checkpoints' input sizes."""
    from mmserve.media import decode_image
    from mmserve.media.deferred import open_upload
    from mmserve.media.sizes import ImageInput, for_model

    inputs = {
        "tiny CLIP (32)": ImageInput(shortest_edge=32, crop=(32, 32)),
        "CLIP ViT-B/32 (224)": ImageInput(shortest_edge=224, crop=(224, 224)),
        "BLIP (384x384)": ImageInput(height=384, width=384),
        "ViLT (384-640)": ImageInput(shortest_edge=384, longest_edge=639, size_divisor=32),
    }
    sizes = {"before": len(pickle.dumps(decode_image(data)))}
    upload = open_upload(data)
    for name, needs in inputs.items():
        sizes[name] = len(pickle.dumps(for_model(upload, needs)))
    return sizes


def encodings() -> dict[str, dict[str, float]]:
    """A CLIP-sized (224x224) and a BLIP-sized (384x384) image: raw pixels (pickled) against
    PNG and JPEG (q95), bytes and encode + decode ms (median of 20)."""
    photo = synthetic_photo(*SIZES[-1], seed=14)
    table: dict[str, dict[str, float]] = {}
    for side in (224, 384):
        image = photo.resize((side, side), Image.Resampling.BICUBIC)

        def raw(image: Image.Image = image) -> int:
            data = pickle.dumps(image)
            pickle.loads(data).load()
            return len(data)

        def encoded(fmt: str, image: Image.Image = image, **options: Any) -> Callable[[], int]:
            def run() -> int:
                buffer = io.BytesIO()
                image.save(buffer, format=fmt, **options)
                Image.open(io.BytesIO(buffer.getvalue())).load()
                return len(buffer.getvalue())

            return run

        for name, func in (
            ("raw pixels", raw),
            ("PNG", encoded("PNG")),
            ("JPEG q95", encoded("JPEG", quality=95)),
        ):
            times = []
            for _ in range(20):
                start = time.perf_counter()
                size = func()
                times.append(time.perf_counter() - start)
            table[f"{side}x{side} {name}"] = {
                "bytes": size,
                "ms": statistics.median(times) * 1000,
            }
    return table


def write_config(folder: Path, encoder: dict[str, Any] | None = None) -> Path:
    """deployments/tiny.yaml with its store in ``folder`` (warm-up on, as shipped), its image
    and text encoder entries updated with ``encoder`` (e.g. another source, a GPU)."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "deployments" / "tiny.yaml").read_text())
    for name in ("image_encoder", "text_encoder"):
        data["models"][name] |= encoder or {}
    data["store"] = {**data.get("store", {}), "path": str(folder / "store")}
    data["workflows"] = [str(ROOT / "workflows")]
    data["agents"] = [str(ROOT / "agents")]
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def time_server(
    config: Path,
    bodies: dict[str, dict[str, Any]],
    runs: int,
    *,
    folder: Path,
    variant: str,
    throughput: int = 0,
    seconds: float = 20.0,
) -> dict[str, dict[str, float]]:
    """p50 request and step ms per upload on one ``mmserve serve`` of ``config``; with
    ``throughput`` > 0, also images/s of the largest upload at that many requests at once."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    overlay: list[str] = []
    if variant == "before":
        (folder / "before").mkdir(exist_ok=True)
        (folder / "before" / "sitecustomize.py").write_text(BEFORE_OVERLAY)
        overlay = [str(folder / "before")]
    server = ServerProcess(
        system=f"image-path-{variant}",
        argv=[*_mmserve_command(), "--config", str(config), "--port", str(port)],
        url=base,
        body_for=lambda _: {},
        log_path=folder / f"{variant}.log",
        health_url=f"{base}/v1/health",
        ready_timeout_s=900,
        pythonpath=overlay,
    )
    results: dict[str, dict[str, float]] = {}
    try:
        _start(server)
        print(f"image path ({variant}): ready after {server.startup_s:.0f} s", flush=True)
        url = f"{base}/v1/workflows/classify/run"
        with httpx.Client(timeout=300) as client:
            for body in bodies.values():  # warm every size once
                client.post(url, json=body).raise_for_status()
            for name, body in bodies.items():
                totals, steps = [], []
                for _ in range(runs):
                    start = time.perf_counter()
                    response = client.post(url, json=body)
                    totals.append(time.perf_counter() - start)
                    response.raise_for_status()
                    steps.append(float(response.json()["trace"][0]["wall_ms"]))
                results[name] = {
                    "p50_ms": statistics.median(totals) * 1000,
                    "step_ms": statistics.median(steps),
                    "multipart_p50_ms": _multipart_p50(client, url, body, runs),
                }
                print(f"  {variant} {name}: {results[name]}", flush=True)
        if throughput > 0:
            name, body = list(bodies.items())[-1]
            rate = asyncio.run(images_per_s(url, body, throughput, seconds))
            results[name]["images_per_s"] = rate
            print(f"  {variant} {name}: {rate:.1f} images/s at {throughput} at once", flush=True)
    finally:
        server.stop()
    return results


def _multipart_p50(client: httpx.Client, url: str, body: dict[str, Any], runs: int) -> float:
    """p50 ms of ``body`` sent as a multipart upload (the JPEG file as is, no base64: what
    ``curl -F image=@photo.jpg`` sends)."""
    files = {"image": ("photo.jpg", base64.b64decode(body["inputs"]["image"]), "image/jpeg")}
    data = {"labels": json.dumps(body["inputs"]["labels"])}
    client.post(url, files=files, data=data).raise_for_status()
    totals = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.post(url, files=files, data=data)
        totals.append(time.perf_counter() - start)
        response.raise_for_status()
    return statistics.median(totals) * 1000


async def images_per_s(url: str, body: dict[str, Any], concurrency: int, seconds: float) -> float:
    """Answers per second of ``concurrency`` clients posting ``body`` for ``seconds``."""
    done = 0
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < end:
                response = await client.post(url, json=body)
                response.raise_for_status()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - started)


def _start(server: ServerProcess, attempts: int = 6) -> None:
    """Start ``server``, again if Ray's node did not come up in time (Ray gives its raylet a
    fixed 30 s to register, which a machine under heavy load can miss)."""
    for attempt in range(attempts):
        try:
            server.start()
            return
        except RuntimeError as exc:
            server.stop()
            if attempt == attempts - 1 or "timed out during startup" not in str(exc):
                raise
            print(f"{server.system}: Ray did not start in time; starting again", flush=True)


def measure(
    runs: int,
    *,
    encoder: dict[str, Any] | None = None,
    throughput: int = 0,
    seconds: float = 20.0,
) -> dict[str, Any]:
    """Both servers, one after the other, on the same uploads; plus the bytes tables.
    ``encoder``: changes to the CLIP entries of tiny.yaml; ``throughput``: see
    :func:`time_server`."""
    photos = uploads()
    bodies = {
        name: {"inputs": {"image": base64.b64encode(data).decode(), "labels": LABELS}}
        for name, data in photos.items()
    }
    folder = Path(tempfile.mkdtemp(prefix="image_path_"))
    config = write_config(folder, encoder)
    timings = {
        variant: time_server(
            config,
            bodies,
            runs,
            folder=folder,
            variant=variant,
            throughput=throughput,
            seconds=seconds,
        )
        for variant in ("before", "after")
    }
    return {
        "runs": runs,
        "encoder": encoder or {},
        "throughput_concurrency": throughput,
        "uploads": {
            name: {"jpeg_bytes": len(data), "crossing_bytes": crossing_bytes(data)}
            for name, data in photos.items()
        },
        "timings": timings,
        "encodings": encodings(),
    }


def markdown(result: dict[str, Any]) -> str:
    """The tables of a :func:`measure` result (a section of the suite's report)."""
    timings, uploads_ = result["timings"], result["uploads"]
    before, after = timings["before"], timings["after"]
    lines = [
        "## Image path (issue 14)",
        "",
        f"`classify` on deployments/tiny.yaml, served, sequential, p50 of {result['runs']}; "
        "before = main's image path (full decode, full pixels to the replica), after = draft "
        "decode + reduction in the ingress. Bytes crossing: the pickled image sent to the model "
        "replica (tiny CLIP: 32 px).",
        "",
        "| upload | JPEG MB | p50 before | p50 after | p50 after, multipart | step before "
        "| step after | MB crossing before | MB crossing after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, upload in uploads_.items():
        crossing = upload["crossing_bytes"]
        lines.append(
            f"| {name} | {upload['jpeg_bytes'] / 1e6:.2f} | {before[name]['p50_ms']:.1f} ms "
            f"| {after[name]['p50_ms']:.1f} ms | {_ms(after[name].get('multipart_p50_ms'))} "
            f"| {before[name]['step_ms']:.1f} ms "
            f"| {after[name]['step_ms']:.1f} ms | {crossing['before'] / 1e6:.2f} "
            f"| {crossing['tiny CLIP (32)'] / 1e6:.4f} |"
        )
    small, large = ratios(timings)
    if result.get("throughput_concurrency"):
        last = list(uploads_)[-1]
        lines += [
            "",
            f"{last} at {result['throughput_concurrency']} requests at once: "
            f"{before[last]['images_per_s']:.1f} images/s before, "
            f"{after[last]['images_per_s']:.1f} after (CLIP entries: {result['encoder']}).",
        ]
    lines += [
        "",
        f"4000x3000 p50 / 224x224 p50: before {small:.1f}x, after {large:.1f}x (target <= 2x); "
        f"after, multipart uploads (no base64): {_multipart_ratio(after)}.",
        "",
        "Bytes crossing per image after the reduction, by the model's input size (MB):",
        "",
        "| upload | "
        + " | ".join(k for k in next(iter(uploads_.values()))["crossing_bytes"] if k != "before")
        + " |",
        "|---|" + "---|" * (len(next(iter(uploads_.values()))["crossing_bytes"]) - 1),
    ]
    for name, upload in uploads_.items():
        cells = [f"{v / 1e6:.3f}" for k, v in upload["crossing_bytes"].items() if k != "before"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "A model-sized image: raw pixels against an encoding (encode + decode, median of 20):",
        "",
        "| image | bytes | ms |",
        "|---|---|---|",
    ]
    for name, row in result["encodings"].items():
        lines.append(f"| {name} | {int(row['bytes'])} | {row['ms']:.2f} |")
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _multipart_ratio(timings: dict[str, dict[str, float]]) -> str:
    small, large = (timings[name].get("multipart_p50_ms") for name in ("224x224", "4000x3000"))
    return "-" if small is None or large is None else f"{large / small:.1f}x"


def ratios(timings: dict[str, dict[str, dict[str, float]]]) -> tuple[float, float]:
    """4000x3000 p50 over 224x224 p50, before and after."""
    ratios = [
        timings[v]["4000x3000"]["p50_ms"] / timings[v]["224x224"]["p50_ms"]
        for v in ("before", "after")
    ]
    return ratios[0], ratios[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.image_path")
    parser.add_argument("--runs", type=int, default=15, help="Requests per upload size.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="image_path", help="File name stem of the results.")
    parser.add_argument("--source", help="The CLIP source (default: tiny.yaml's tiny://clip).")
    parser.add_argument("--device", help="The CLIP entries' device (e.g. cuda).")
    parser.add_argument("--dtype", help="The CLIP entries' dtype (e.g. float16).")
    parser.add_argument("--gpus", type=float, help="GPUs of the CLIP deployment.")
    parser.add_argument("--max-batch", type=int, help="The CLIP entries' batch.max_size.")
    parser.add_argument(
        "--throughput", type=int, default=0, help="Also images/s at this many requests at once."
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="Per throughput point.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    encoder: dict[str, Any] = {
        key: value
        for key, value in (
            ("source", args.source),
            ("device", args.device),
            ("dtype", args.dtype),
            ("gpus", args.gpus),
        )
        if value is not None
    }
    if args.max_batch is not None:
        encoder["batch"] = {"max_size": args.max_batch}
    result = measure(args.runs, encoder=encoder, throughput=args.throughput, seconds=args.seconds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(result) + "\n")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
