from __future__ import annotations

from pathlib import Path

import pytest

from mmserve.cli.inputs import parse_inputs
from mmserve.errors import InputError

SCHEMA = {
    "properties": {
        "image": {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/*"},
        "top_k": {"type": "integer"},
        "labels": {"type": "array", "items": {"type": "string"}},
        "text": {"type": "string"},
    }
}


def test_values_are_typed_by_the_schema(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG...")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello = world")
    inputs = parse_inputs(
        [f"image=@{image}", "top_k=3", 'labels=["a", "b"]', f"text=@{notes}"], SCHEMA
    )
    assert inputs == {
        "image": b"\x89PNG...",
        "top_k": 3,
        "labels": ["a", "b"],
        "text": "hello = world",
    }


def test_unparseable_typed_values_pass_through_for_the_engine_to_name() -> None:
    assert parse_inputs(["top_k=five", "text=a=b"], SCHEMA) == {"top_k": "five", "text": "a=b"}


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("novalue", "not of the form name=value"),
        ("=3", "not of the form name=value"),
        ("image=cat.png", "pass a file as image=@"),
        ("image=@/nonexistent/cat.png", "cannot read '/nonexistent/cat.png'"),
    ],
)
def test_malformed_pairs_are_one_clear_error(pair: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_inputs([pair], SCHEMA)


def test_duplicates_and_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="given twice"):
        parse_inputs(["top_k=1", "top_k=2"], SCHEMA)
    with pytest.raises(InputError, match="is a folder"):
        parse_inputs([f"image=@{tmp_path}"], SCHEMA)


def test_a_list_that_is_not_json_gets_a_hint_with_the_json_to_write() -> None:
    with pytest.raises(InputError, match="'labels' is a list") as caught:
        parse_inputs(["labels=circle,square"], SCHEMA)
    assert caught.value.hint == (
        """write it as JSON in single quotes, e.g. --input 'labels=["circle", "square"]'"""
    )
