"""Static checks of the control keys of a step: ``for_each``/``as``, ``when``, ``cache``.

Each problem is reported at its own line and column with a hint, before anything runs.
(``retry`` needs no check beyond its shape: whether a step can fail in a way that may pass is
not knowable statically for plugins, so it is always allowed.)
"""

from __future__ import annotations

import typing
from typing import Any, get_args, get_origin

from mmserve.workflow.language.checks_values import ValueChecker
from mmserve.workflow.language.conditions import (
    Compare,
    ConditionSyntaxError,
    Expr,
    ListOf,
    Literal,
    Not,
    Ref,
    parse_condition,
    references,
)
from mmserve.workflow.language.references import INPUTS_ROOT, ReferenceSyntaxError, parse_template
from mmserve.workflow.language.spec import StepSpec
from mmserve.workflow.language.typecheck import describe, is_any, list_item_type, scalar_base

_WHEN_HINT = (
    "write e.g. `when: ${classify.score} >= 0.5 and ${classify.label} in ['cat', 'dog']` "
    "(operators: == != < <= > >= in, joined by and / or, `not` in front)"
)


def is_deterministic_class(cls: Any) -> bool:
    """Whether a step class may ever be cached: ``deterministic`` is True or a function of its
    inputs (decided per run)."""
    declared = getattr(cls, "deterministic", False)
    return declared is True or callable(declared)


def check_for_each(checker: ValueChecker, step_id: str, spec: StepSpec) -> None:
    """Check ``for_each``/``as`` and put the item name in scope for the step's ``with``."""
    checker.items = {}
    if spec.for_each is None:
        if "as_" in spec.model_fields_set:
            checker.sink.add(
                ("steps", step_id, "as"),
                f"step {step_id!r}: `as` names the item of a for_each, and the step has none",
                "add `for_each: ${STEP.LIST}`, or remove `as`",
                key=True,
            )
        return
    path = ("steps", step_id, "for_each")
    name = spec.as_
    if name in checker.parts.steps or name == INPUTS_ROOT:
        what = "the workflow inputs" if name == INPUTS_ROOT else f"the step {name!r}"
        checker.sink.add(
            ("steps", step_id, "as") if "as_" in spec.model_fields_set else path,
            f"step {step_id!r}: the for_each item name {name!r} shadows {what}",
            "pick another name with `as: NAME`, e.g. `as: match`",
        )
    item_type: Any = Any
    try:
        single = parse_template(spec.for_each).single
    except ReferenceSyntaxError:
        single = None
    if single is None:
        checker.sink.add(
            path,
            f"step {step_id!r}: for_each must be one reference to a list, got {spec.for_each!r}",
            "write e.g. `for_each: ${search.matches}`",
        )
    else:
        source = checker.string_type(spec.for_each, path)
        if source is not None:
            found = list_item_type(source)
            if found is None:
                checker.sink.add(
                    path,
                    f"step {step_id!r}: for_each needs a list, but {single.text} is "
                    f"{describe(source)}",
                    "reference a list, e.g. ${search.matches} or ${inputs.NAME} of type array",
                    needle=single.text,
                )
            else:
                item_type = found
    checker.items = {name: item_type}


def check_cache(checker: ValueChecker, step_id: str, spec: StepSpec, cls: Any) -> None:
    if not spec.cache or cls is None or is_deterministic_class(cls):
        return
    checker.sink.add(
        ("steps", step_id, "cache"),
        f"step {step_id!r} ({spec.uses}) is not deterministic, so its result cannot be cached",
        "remove `cache: true`; only steps that declare `deterministic` (the same inputs give "
        "the same result, e.g. greedy decoding or a fixed seed) can be cached",
    )


def check_when(checker: ValueChecker, step_id: str, spec: StepSpec) -> None:
    if spec.when is None:
        return
    path = ("steps", step_id, "when")
    try:
        tree = parse_condition(spec.when)
    except ConditionSyntaxError as exc:
        checker.sink.add(path, f"step {step_id!r}: when: {exc}", _WHEN_HINT, needle=exc.needle)
        return
    types = {ref.text: checker.reference_type(ref, path) for ref in references(tree)}
    _check_expr(checker, step_id, tree, types)


def _kind(tp: Any) -> str:
    """number, string, boolean, null, list, any or other."""
    if tp is None or is_any(tp):
        return "any"
    base = scalar_base(tp)
    if get_origin(base) is typing.Literal:
        values = get_args(base)
        kinds = {_kind(type(v)) for v in values}
        return kinds.pop() if len(kinds) == 1 else "any"
    if base is bool:
        return "boolean"
    if base in (int, float):
        return "number"
    if base is str:
        return "string"
    if base is type(None):
        return "null"
    if list_item_type(base) is not None:
        return "list"
    return "other"


def _operand_kind(operand: Any, types: dict[str, Any]) -> tuple[str, Any]:
    if isinstance(operand, Ref):
        tp = types.get(operand.ref.text)
        return _kind(tp), tp
    if isinstance(operand, ListOf):
        return "list", None
    value = operand.value
    if value is None:
        return "null", None
    return _kind(type(value)), type(value)


def _text(operand: Any) -> str:
    return str(operand.ref.text if isinstance(operand, Ref) else operand.text)


def _check_expr(checker: ValueChecker, step_id: str, tree: Expr, types: dict[str, Any]) -> None:
    path = ("steps", step_id, "when")
    if isinstance(tree, Compare):
        _check_compare(checker, step_id, tree, types)
    elif isinstance(tree, Ref):
        kind, tp = _operand_kind(tree, types)
        if kind not in ("boolean", "any"):
            checker.sink.add(
                path,
                f"step {step_id!r}: when: {tree.ref.text} is {describe(tp)}, not a boolean",
                f"compare it, e.g. `{tree.ref.text} == ...` or `{tree.ref.text} >= 0.5`",
                needle=tree.ref.text,
            )
    elif isinstance(tree, Literal | ListOf):
        checker.sink.add(
            path,
            f"step {step_id!r}: when: {tree.text} is a constant, not a condition",
            _WHEN_HINT,
            needle=tree.text,
        )
    elif isinstance(tree, Not):
        _check_expr(checker, step_id, tree.expr, types)
    else:
        for child in tree.items:
            _check_expr(checker, step_id, child, types)


def _check_compare(
    checker: ValueChecker, step_id: str, tree: Compare, types: dict[str, Any]
) -> None:
    path = ("steps", step_id, "when")
    left, _ = _operand_kind(tree.left, types)
    right, right_tp = _operand_kind(tree.right, types)
    needle = _text(tree.left) if isinstance(tree.left, Ref) else _text(tree.right)
    if tree.op == "in":
        if right not in ("list", "string", "any"):
            checker.sink.add(
                path,
                f"step {step_id!r}: when: `in` needs a list on its right, got {_text(tree.right)}",
                "write e.g. `${classify.label} in ['cat', 'dog']`",
                needle=_text(tree.right),
            )
            return
        if isinstance(tree.right, ListOf):
            for item in tree.right.items:
                _same_kind(checker, step_id, tree.left, item, types, needle)
        elif right == "list" and right_tp is not None:
            item_kind = _kind(list_item_type(right_tp))
            if "any" not in (left, item_kind) and left != item_kind:
                checker.sink.add(
                    path,
                    f"step {step_id!r}: when: {_text(tree.left)} is a {left}, but "
                    f"{_text(tree.right)} holds {item_kind}s",
                    "compare values of the same type",
                    needle=needle,
                )
        return
    if tree.op in ("<", "<=", ">", ">="):
        for kind, operand in ((left, tree.left), (right, tree.right)):
            if kind not in ("number", "string", "any"):
                checker.sink.add(
                    path,
                    f"step {step_id!r}: when: {_text(operand)} is a {kind}: `{tree.op}` "
                    "compares numbers or texts",
                    "use == or != for booleans and null",
                    needle=_text(operand),
                )
                return
    _same_kind(checker, step_id, tree.left, tree.right, types, needle)


def _same_kind(
    checker: ValueChecker,
    step_id: str,
    left: Any,
    right: Any,
    types: dict[str, Any],
    needle: str,
) -> None:
    a, _ = _operand_kind(left, types)
    b, _ = _operand_kind(right, types)
    if "any" in (a, b) or "null" in (a, b) or a == b:
        return
    checker.sink.add(
        ("steps", step_id, "when"),
        f"step {step_id!r}: when compares {_text(left)} (a {a}) with {_text(right)} (a {b})",
        "compare values of the same type: quote text ('cat'), write numbers bare (0.5)",
        needle=needle,
    )


__all__ = ["check_cache", "check_for_each", "check_when", "is_deterministic_class"]
