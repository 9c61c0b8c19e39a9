"""`mmserve status` where no cluster answers: one line on stderr and exit 1, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

MMSERVE = str(Path(sys.executable).with_name("mmserve"))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (f"127.0.0.1:{_closed_port()}", "error: cannot reach the Ray cluster at 127.0.0.1:"),
        ("nowhere", "error: invalid Ray address 'nowhere'"),
    ],
    ids=["closed-port", "not-an-address"],
)
def test_status_without_a_cluster_is_one_line(address: str, expected: str) -> None:
    done = subprocess.run(
        [MMSERVE, "status", "--address", address], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(expected), done.stderr


def test_the_cli_starts_without_importing_ray_or_torch() -> None:
    """Every `mmserve` command imports the CLI; only the commands that need Ray (serve,
    status) or a model import them, so `mmserve --help` or a bad flag answers at once."""
    import subprocess
    import sys

    heavy = "('ray', 'ray.serve', 'torch', 'transformers')"
    probe = f"import sys, mmserve.cli.main; print(sorted(m for m in {heavy} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
