"""A throwaway Redis for tests and benchmarks of the Redis job broker: Debian's (or any)
``redis-server`` started on a free port with no persistence, stopped by its process id on
exit. Never a Redis that happens to be running::

    from mmserve.testing.redis import redis_server

    with redis_server(tmp_path) as url:     # redis://127.0.0.1:<port>/0
        config = {..., "jobs": {"broker": url}}
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmserve.errors import ConfigError


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server(folder: Path, *, start_timeout_s: float = 20.0) -> Iterator[str]:
    """A fresh ``redis-server`` on a free port (its working files in ``folder``); its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ConfigError(
            "redis-server is not installed",
            hint="apt-get install redis-server (.ci/run installs it)",
        )
    port = _free_port()
    folder.mkdir(parents=True, exist_ok=True)
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(folder)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise ConfigError(f"redis-server did not start on port {port}") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


__all__ = ["redis_server"]
