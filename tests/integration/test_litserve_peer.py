"""The LitServe benchmark peer starts and answers next to mcp 2.x (mmserve's own dependency).

LitServe 0.2.19 turns its MCP endpoint on whenever ``mcp`` is installed and then fails to
start with mcp 2.x (``NameError: name 'MCPServer' is not defined``); the peer switches that
endpoint off. Needs the ``[bench]`` extra (skipped without LitServe).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

pytest.importorskip("litserve")
pytest.importorskip("mcp")

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_litserve_peer_starts_and_embeds_with_mcp_installed(tmp_path: Path) -> None:
    port = _free_port()
    log = (tmp_path / "litserve.log").open("wb")
    argv = [sys.executable, "-m", "benchmarks.peers.litserve_peer", "--preset", "minilm"]
    process = subprocess.Popen(
        [*argv, "--port", str(port), "--device", "cpu", "--max-batch", "4"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group: teardown stops exactly its workers
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the peer exited with {process.returncode}:\n{_tail(tmp_path)}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        else:
            pytest.fail(f"the peer did not start:\n{_tail(tmp_path)}")
        answer = httpx.post(
            f"http://127.0.0.1:{port}/predict", json={"text": "a red circle"}, timeout=120
        )
        assert answer.status_code == 200
        assert len(answer.json()["vector"]) == 384  # all-MiniLM-L6-v2's dimension
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def _tail(folder: Path) -> str:
    return (folder / "litserve.log").read_text(errors="replace")[-3000:]
