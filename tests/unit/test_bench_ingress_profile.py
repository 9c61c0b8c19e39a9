"""The ingress profile's summary: each py-spy sample goes to the first part on its stack."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.suite.ingress_profile import summarise

pytestmark = pytest.mark.unit


def test_samples_go_to_the_first_named_part_on_their_stack(tmp_path: Path) -> None:
    raw = tmp_path / "c1.txt"
    raw.write_text(
        # the model's forward under the engine is the model's
        "thread;run (mmserve/workflow/engine.py:10);forward (torch/nn/modules/module.py:1) 6\n"
        "thread;route (mmserve/serving/api.py:5);validate (pydantic/main.py:9) 3\n"
        "thread;somewhere (elsewhere.py:1) 1\n"
    )
    text = summarise(raw, top=2)
    assert "10 samples" in text
    assert " 60.0%  model forward (torch)" in text
    assert " 30.0%  mmserve HTTP routes + checks" in text
    assert " 10.0%  other" in text
    assert "workflow engine" not in text
    assert text.endswith("30.0%  validate (pydantic/main.py:9)")
