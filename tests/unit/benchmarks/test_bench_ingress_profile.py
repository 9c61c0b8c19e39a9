"""The ingress profile's summary: each py-spy sample goes to the first part on its stack."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from benchmarks import image_door
from benchmarks.suite import ingress_profile
from benchmarks.suite.ingress_profile import summarise

pytestmark = pytest.mark.unit


def test_samples_go_to_the_first_named_part_on_their_stack(tmp_path: Path) -> None:
    raw = tmp_path / "c1.txt"
    raw.write_text(
        # the model's forward under the engine is the model's
        "thread;run (mmserve/workflow/run/engine.py:10);forward (torch/nn/modules/module.py:1) 6\n"
        "thread;route (mmserve/http/api.py:5);validate (pydantic/main.py:9) 3\n"
        "thread;somewhere (elsewhere.py:1) 1\n"
    )
    text = summarise(raw, top=2)
    assert "10 samples" in text
    assert " 60.0%  model forward (torch)" in text
    assert " 30.0%  mmserve HTTP routes + checks" in text
    assert " 10.0%  other" in text
    assert "workflow engine" not in text
    assert text.endswith("30.0%  validate (pydantic/main.py:9)")


def test_the_documented_profile_commands_parse() -> None:
    readme = (Path(__file__).parents[3] / "benchmarks" / "README.md").read_text()
    modules: dict[str, Any] = {
        "benchmarks.suite.ingress_profile": ingress_profile,
        "benchmarks.image_door": image_door,
    }
    for name, module in modules.items():
        commands = re.findall(rf"python -m {re.escape(name)}([^`\n]*)", readme)
        assert commands, name
        for flags in commands:
            module.parse_args(shlex.split(flags, comments=True))
