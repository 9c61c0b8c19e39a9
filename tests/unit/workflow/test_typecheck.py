"""Type compatibility rules between referenced values and step input fields."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Optional

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image
from pydantic import BaseModel

from mmserve.media import ImageValue
from mmserve.workflow.language.references import ReferenceSyntaxError, parse_template
from mmserve.workflow.language.spec import InputSpec
from mmserve.workflow.language.typecheck import (
    NavigationError,
    describe,
    input_type,
    mismatch,
    navigate,
)

pytestmark = pytest.mark.unit


class Inner(BaseModel):
    label: str
    scores: list[float]


class Outer(BaseModel):
    items: list[Inner]
    best: Inner | None = None
    picture: ImageValue | None = None


class Other(BaseModel):
    label: str


class SubInner(Inner):
    extra: int = 0


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (str, str),
        (int, float),
        (int, int | None),
        (Optional[str], str),  # noqa: UP045 -- the spelling is what is under test
        (Literal["a", "b"], str),
        (str, Literal["a", "b"]),
        (list[int], list[float]),
        (list[str], Sequence[str]),
        (ImageValue, ImageValue),
        (Image.Image, ImageValue),
        (list[ImageValue], list[ImageValue]),
        (Inner, Inner),
        (SubInner, Inner),
        (dict[str, Any], Inner),
        (Any, int),
        (str, Any),
        (npt.NDArray[np.float32], list[float]),
        (tuple[int, ...], list[int]),
    ],
)
def test_compatible(source: Any, target: Any) -> None:
    assert mismatch(source, target) is None


@pytest.mark.parametrize(
    ("source", "target", "reason"),
    [
        (int, str, "int does not fit str"),
        (bool, int, "bool does not fit int"),
        (float, int, "float does not fit int"),
        (str, ImageValue, "str does not fit image"),
        (ImageValue, str, "image does not fit str"),
        (str, list[str], "str does not fit list[str]"),
        (list[str], list[int], "list[str] does not fit list[int]"),
        (Literal["a", 1], str, "Literal['a', 1] does not fit str"),
        (Literal["x"], Literal["a", "b"], "Literal['x'] does not fit Literal['a', 'b']"),
        (Other, Inner, "Other does not fit Inner"),
        (Inner, dict[str, str], "Inner does not fit dict[str, str]"),  # scores: list[float]
    ],
)
def test_incompatible(source: Any, target: Any, reason: str) -> None:
    assert mismatch(source, target) == reason


def test_navigate_models_lists_and_optionals() -> None:
    assert navigate(Outer, ["items", 0, "label"]) is str
    assert navigate(Outer, ["items", 3, "scores", 1]) is float
    assert navigate(Outer, ["best", "label"]) is str
    assert describe(navigate(Outer, ["picture"])) == "image | None"
    assert navigate(dict[str, list[int]], ["any", 0]) is int
    assert navigate(Any, ["x", 0, "y"]) is Any


@pytest.mark.parametrize(
    ("path", "index", "message", "known"),
    [
        (["itemz"], 0, "has no field 'itemz'", ["best", "items", "picture"]),
        (["items", "label"], 1, "is a list (list[Inner]): pick an item first, e.g. [0].label", []),
        (["items", 0, 0], 2, "is Inner, not a list: it has no [0]", []),
        (["items", 0, "label", "x"], 3, "is str: it has no field 'x'", []),
        (["picture", "x"], 1, "is image: it has no field 'x'", []),
    ],
)
def test_navigation_errors(path: list[Any], index: int, message: str, known: list[str]) -> None:
    with pytest.raises(NavigationError) as info:
        navigate(Outer, path)
    assert (info.value.index, info.value.message, info.value.known) == (index, message, known)


def test_input_types() -> None:
    assert input_type(InputSpec(type="integer")) is int
    assert describe(input_type(InputSpec(type="image"))) == "image"
    spec = InputSpec.model_validate({"type": "array", "items": "number", "default": None})
    assert describe(input_type(spec)) == "list[float] | None"
    assert describe(input_type(InputSpec(type="string", enum=["a", "b"]))) == "Literal['a', 'b']"


def test_templates() -> None:
    single = parse_template("${a.b[0].c}")
    assert single.single is not None
    assert (single.single.root, single.single.path) == ("a", ("b", 0, "c"))
    mixed = parse_template("x ${inputs.y} $${z} ${ a.b }")
    assert [p if isinstance(p, str) else p.text for p in mixed.parts] == [
        "x ",
        "${inputs.y}",
        " ${z} ",
        "${ a.b }",
    ]
    assert parse_template("plain").parts == ("plain",)
    with pytest.raises(ReferenceSyntaxError, match="malformed reference"):
        parse_template("${a..b}")
