"""Static type compatibility between what a reference yields and what a step field takes.

Types are plain Python annotations, as found on step ``Inputs``/``Outputs`` pydantic models
(``str``, ``list[Match]``, ``float | None``, ``Literal[...]``, nested models, ``Any``, the
image type :data:`mmserve.media.ImageValue`). The rules mirror what pydantic accepts at run
time in its default (lax) mode, minus the coercions that hide mistakes: an ``int`` is a valid
``float`` but a ``bool`` is not an ``int`` and a number is not a string. When a check cannot
be decided statically (``str`` into a ``Literal``, ``X | None`` into ``X``, a ``dict`` into a
model) it passes and pydantic decides at run time. Models are matched by shape: a step's
output model fits a ``dict[str, V]`` whose ``V`` takes each field, or another model with the
same fields (the engine hands the fields over when the classes differ).
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from PIL import Image as PILImage
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from mmserve.media import ImageValue
from mmserve.workflow.language.references import STAR
from mmserve.workflow.language.spec import InputSpec
from mmserve.workflow.language.yaml_source import PathKey

_LIST_ORIGINS: tuple[Any, ...] = (list, tuple, set, frozenset, Sequence, Iterable)
_DICT_ORIGINS: tuple[Any, ...] = (dict, Mapping)
_NONE = type(None)


class NavigationError(Exception):
    """A path segment that does not exist on the type; ``known`` lists what does."""

    def __init__(self, index: int, message: str, known: list[str] | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.message = message
        self.known = known or []


def field_type(info: FieldInfo) -> Any:
    """A model field's annotation with its metadata (so ``ImageValue`` stays recognisable)."""
    if info.metadata:
        return Annotated[(info.annotation, *info.metadata)]
    return info.annotation


def input_type(spec: InputSpec) -> Any:
    """The Python type a workflow input declared in YAML has once validated."""
    simple: dict[str, Any] = {
        "image": ImageValue,
        "string": str,
        "integer": int,
        "number": float,
        "boolean": bool,
        "object": dict[str, Any],
    }
    tp: Any
    if spec.type == "array":
        tp = list[input_type(spec.items)] if spec.items else list[Any]  # type: ignore[misc]
    elif spec.type == "string" and spec.enum and all(isinstance(v, str) for v in spec.enum):
        tp = Literal[tuple(spec.enum)]
    else:
        tp = simple[spec.type]
    if not spec.required and spec.default is None:
        tp = tp | None
    return tp


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def is_any(tp: Any) -> bool:
    return _unwrap(tp) is Any


def is_image(tp: Any) -> bool:
    tp = _unwrap(tp)
    return isinstance(tp, type) and issubclass(tp, PILImage.Image)


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _is_ndarray(tp: Any) -> bool:
    base = get_origin(tp) or tp
    return isinstance(base, type) and base.__module__ == "numpy" and base.__name__ == "ndarray"


def list_item_type(tp: Any) -> Any | None:
    """The item type when ``tp`` is list-like, else None (``Optional`` looked through)."""
    tp = _unwrap(tp)
    if _is_union(tp):
        members = [_unwrap(m) for m in get_args(tp) if m is not _NONE]
        items = [i for i in map(_list_item, members) if i is not None]
        return items[0] if len(items) == 1 else (Any if items else None)
    return _list_item(tp) if tp is not Any else Any


def mapping_fields(tp: Any) -> dict[str, Any] | None:
    """Field types a mapping written in YAML may fill: a model's fields, a dict's value type
    under the key ``"*"``, or None when ``tp`` takes no mapping."""
    tp = _unwrap(tp)
    if tp is Any:
        return {"*": Any}
    if _is_union(tp):
        for member in get_args(tp):
            found = mapping_fields(member)
            if found is not None:
                return found
        return None
    if _is_model(tp):
        return {name: field_type(info) for name, info in tp.model_fields.items()}
    value = _dict_value(tp)
    return None if value is None else {"*": value}


def scalar_base(tp: Any) -> Any:
    """``tp`` without Annotated and without a ``| None``, when that leaves one type."""
    tp = _unwrap(tp)
    if _is_union(tp):
        members = [m for m in get_args(tp) if m is not _NONE]
        if len(members) == 1:
            return _unwrap(members[0])
    return tp


def _list_item(tp: Any) -> Any | None:
    """The item type when ``tp`` is list-like (``Any`` when unparameterised), else None."""
    if _is_ndarray(tp):
        return Any
    origin = get_origin(tp) or tp
    if origin not in _LIST_ORIGINS:
        return None
    args = [a for a in get_args(tp) if a is not Ellipsis]
    if origin is tuple and len(set(map(str, args))) > 1:
        return Union[tuple(args)]  # noqa: UP007 -- built from a runtime tuple
    return args[0] if args else Any


def _dict_value(tp: Any) -> Any | None:
    origin = get_origin(tp) or tp
    if origin not in _DICT_ORIGINS:
        return None
    args = get_args(tp)
    return args[1] if len(args) == 2 else Any


def describe(tp: Any) -> str:
    """A short human name for a type: ``image``, ``list[str]``, ``Match | None``."""
    tp = _unwrap(tp)
    if tp is Any:
        return "any"
    if is_image(tp):
        return "image"
    if tp is _NONE:
        return "None"
    if _is_union(tp):
        return " | ".join(describe(a) for a in get_args(tp))
    if get_origin(tp) is Literal:
        return "Literal[" + ", ".join(repr(a) for a in get_args(tp)) + "]"
    if _is_ndarray(tp):
        return "ndarray"
    origin = get_origin(tp)
    if origin is not None:
        args = ", ".join("..." if a is Ellipsis else describe(a) for a in get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(tp, "__name__", str(tp))


def navigate(tp: Any, path: Sequence[PathKey], *, offset: int = 0) -> Any:
    """The type found by following ``path`` (field names, list indices) from ``tp``.

    Raises :class:`NavigationError` naming the first segment that does not exist.
    """
    for position, segment in enumerate(path):
        if segment == STAR:
            item = list_item_type(tp)
            if item is None:
                raise NavigationError(
                    offset + position, f"is {describe(tp)}, not a list: it has no [*]"
                )
            rest = navigate(item, path[position + 1 :], offset=offset + position + 1)
            return list[rest]  # type: ignore[valid-type]
        tp = _step(_unwrap(tp), segment, offset + position)
    return tp


def _step(tp: Any, segment: PathKey, index: int) -> Any:
    if tp is Any:
        return Any
    if _is_union(tp):
        members = [m for m in get_args(tp) if m is not _NONE]
        results, error = [], None
        for member in members:
            try:
                results.append(_step(_unwrap(member), segment, index))
            except NavigationError as exc:
                error = exc
        if not results and error is not None:
            raise error
        return Union[tuple(results)] if len(results) > 1 else results[0]  # noqa: UP007
    if isinstance(segment, int):
        item = _list_item(tp)
        if item is None:
            raise NavigationError(index, f"is {describe(tp)}, not a list: it has no [{segment}]")
        return item
    if _is_model(tp):
        fields = tp.model_fields
        if segment not in fields:
            raise NavigationError(index, f"has no field {segment!r}", sorted(fields))
        return field_type(fields[segment])
    value = _dict_value(tp)
    if value is not None:
        return value
    if _list_item(tp) is not None:
        raise NavigationError(
            index, f"is a list ({describe(tp)}): pick an item first, e.g. [0].{segment}"
        )
    raise NavigationError(index, f"is {describe(tp)}: it has no field {segment!r}")


def mismatch(source: Any, target: Any) -> str | None:
    """None when a value of type ``source`` fits a field of type ``target``, else why not."""
    if _accepts(_unwrap(target), _unwrap(source)):
        return None
    return f"{describe(source)} does not fit {describe(target)}"


def _accepts(target: Any, source: Any) -> bool:
    if target is Any or source is Any:
        return True
    if _is_union(source):
        members = [_unwrap(m) for m in get_args(source) if m is not _NONE]
        return all(_accepts(target, m) for m in members)
    if _is_union(target):
        return any(_accepts(_unwrap(m), source) for m in get_args(target))
    if Literal in (get_origin(source), get_origin(target)):
        return _accepts_literal(target, source)
    if is_image(target) or is_image(source):
        return is_image(target) and is_image(source)
    if target is float:
        return source in (int, float)
    if target in (int, bool, str, bytes, _NONE):
        return source is target
    return _accepts_container(target, source)


def _fields(model: Any) -> dict[str, Any]:
    return {name: field_type(info) for name, info in model.model_fields.items()}


def _same_shape(target: Any, source: Any) -> bool:
    """A model of another class fits when each of its fields fits the target's field of that
    name and it has every field the target requires (the engine passes its fields over)."""
    given, wanted = _fields(source), target.model_fields
    required = {name for name, info in wanted.items() if info.is_required()}
    return (
        given.keys() <= wanted.keys()
        and required <= given.keys()
        and all(_accepts(_unwrap(field_type(wanted[n])), _unwrap(t)) for n, t in given.items())
    )


def _accepts_literal(target: Any, source: Any) -> bool:
    if get_origin(source) is Literal and get_origin(target) is Literal:
        return set(get_args(source)) <= set(get_args(target))
    if get_origin(source) is Literal:
        return all(_accepts(target, type(v)) for v in get_args(source))
    # a plain value into a Literal: only its type can be checked before run time
    return all(_accepts(type(v), source) for v in get_args(target))


def _accepts_container(target: Any, source: Any) -> bool:
    target_item = _list_item(target)
    if target_item is not None:
        source_item = _list_item(source)
        return source_item is not None and _accepts(_unwrap(target_item), _unwrap(source_item))
    target_value = _dict_value(target)
    if target_value is not None:
        if _is_model(source):  # the engine hands a model's fields over as a dict
            return all(
                _accepts(_unwrap(target_value), _unwrap(t)) for t in _fields(source).values()
            )
        source_value = _dict_value(source)
        return source_value is not None and _accepts(_unwrap(target_value), _unwrap(source_value))
    if _is_model(target):
        # a mapping is validated into the model at run time
        if _dict_value(source) is not None:
            return True
        return _is_model(source) and (issubclass(source, target) or _same_shape(target, source))
    target_base = get_origin(target) or target
    source_base = get_origin(source) or source
    return (
        isinstance(target_base, type)
        and isinstance(source_base, type)
        and issubclass(source_base, target_base)
    )


__all__ = [
    "NavigationError",
    "describe",
    "field_type",
    "input_type",
    "is_any",
    "is_image",
    "list_item_type",
    "mapping_fields",
    "mismatch",
    "navigate",
    "scalar_base",
]
