"""docs/jobs.md: the webhook signature check it shows accepts what the server signs and
refuses a changed body or an old timestamp."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from mmserve.jobs.webhooks import signature

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _python_blocks() -> list[str]:
    text = (ROOT / "docs" / "jobs.md").read_text(encoding="utf-8")
    return [m.group(2) for m in _FENCE.finditer(text) if m.group(1) == "python"]


def test_the_shown_signature_check_verifies_what_the_server_signs() -> None:
    (block,) = [b for b in _python_blocks() if "def verify(" in b]
    scope: dict[str, Any] = {}
    exec(compile(block, "docs/jobs.md", "exec"), scope)
    verify = scope["verify"]
    secret, body = b"s3cret", b'{"id":"abc","status":"succeeded"}'
    now = int(time.time())
    assert verify(body, signature(secret, body, now), secret) is True
    assert verify(body + b" ", signature(secret, body, now), secret) is False
    assert verify(body, signature(b"other", body, now), secret) is False
    assert verify(body, signature(secret, body, now - 3600), secret) is False


def test_every_python_block_compiles() -> None:
    for block in _python_blocks():
        compile(block, "docs/jobs.md", "exec")
