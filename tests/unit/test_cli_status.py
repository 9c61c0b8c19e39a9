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
