"""The image path benchmark's commands: the ones the docs and the GPU script give parse, and
the GPU script is valid bash."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from benchmarks import image_path
from benchmarks.run import parse_args

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
GPU_SCRIPT = ROOT / "benchmarks" / "gpu" / "run_gpu.sh"


def test_the_gpu_script_is_valid_bash_and_runs_the_image_path_on_the_gpu() -> None:
    subprocess.run(["bash", "-n", str(GPU_SCRIPT)], check=True)
    text = GPU_SCRIPT.read_text()
    call = text[text.index("-m benchmarks.image_path") :].split("\nfi")[0]
    words = shlex.split(re.sub(r"\\\n", " ", call).replace('"$OUT_DIR"', "out"))[2:]
    args = image_path.parse_args([re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", w) for w in words])
    assert (args.source, args.device, args.dtype) == ("random://clip-vit-b32", "cuda", "float16")
    assert args.throughput > 0 and args.gpus == 1
    assert "--image-path-runs 0" in text  # the suite leaves it to the GPU run below


def test_the_documented_commands_parse() -> None:
    docs = (ROOT / "docs" / "performance.md").read_text() + (
        ROOT / "benchmarks" / "README.md"
    ).read_text()
    commands = re.findall(r"python -m benchmarks\.image_path([^`\n]*)", docs)
    assert commands
    for flags in commands:
        image_path.parse_args(shlex.split(flags, comments=True))
    assert parse_args(["--quick"]).image_path_runs is None  # 7 runs in quick mode


def test_the_markdown_states_both_paths_and_the_ratio() -> None:
    timing = {"p50_ms": 10.0, "step_ms": 5.0}
    slow = {"p50_ms": 100.0, "step_ms": 90.0}
    crossing = {"before": 36_000_000, "tiny CLIP (32)": 3_100, "CLIP ViT-B/32 (224)": 150_600}
    result = {
        "runs": 3,
        "uploads": {
            "224x224": {"jpeg_bytes": 10_000, "crossing_bytes": crossing},
            "4000x3000": {"jpeg_bytes": 800_000, "crossing_bytes": crossing},
        },
        "timings": {
            "before": {"224x224": timing, "4000x3000": slow},
            "after": {
                "224x224": timing | {"multipart_p50_ms": 9.0},
                "4000x3000": {"p50_ms": 15.0, "step_ms": 6.0, "multipart_p50_ms": 12.6},
            },
        },
        "encodings": {"224x224 raw pixels": {"bytes": 150_600, "ms": 0.2}},
    }
    text = image_path.markdown(result)
    assert "before 10.0x, after 1.5x" in text
    assert "after, multipart uploads (no base64): 1.4x" in text
    row = "| 4000x3000 | 0.80 | 100.0 ms | 15.0 ms | 12.6 ms | 90.0 ms | 6.0 ms | 36.00 | 0.0031 |"
    assert row in text
