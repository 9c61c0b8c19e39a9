"""docs/http-api.md's limits snippet is a valid config and names every limit there is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mmserve.config import LimitsConfig, ServerConfig

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[3] / "docs" / "http-api.md"


def test_the_server_snippet_validates_and_shows_every_limit_with_its_default() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)
    [snippet] = [b for b in blocks if "limits:" in b]
    server = ServerConfig.model_validate(yaml.safe_load(snippet)["server"])
    shown = server.limits.model_dump()
    assert set(shown) == set(LimitsConfig.model_fields)
    assert shown == LimitsConfig().model_dump()
