"""``when:`` conditions: a small grammar, parsed once and evaluated without Python's eval.

Grammar::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | atom
    atom       := "(" expr ")" | operand (OP operand)?
    OP         := == | != | < | <= | > | >= | in
    operand    := ${REFERENCE} | NUMBER | 'text' | "text" | true | false | null | [operand, ...]

A lone operand must be a reference to a boolean. Types are checked by
:mod:`mmserve.workflow.checks_when`; :func:`evaluate` computes the value at run time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mmserve.workflow.language.references import Reference, parse_reference

OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "in")

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<ref>\$\{[^{}]*\})
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
    | (?P<string>'[^']*'|"[^"]*")
    | (?P<op>==|!=|<=|>=|<|>)
    | (?P<punct>[()\[\],])
    | (?P<word>[A-Za-z_]+)
    )""",
    re.VERBOSE,
)
_REF_BODY = re.compile(r"\$\{\s*(?P<body>[^{}]*?)\s*\}")


class ConditionSyntaxError(ValueError):
    """A condition that does not follow the grammar; ``needle`` is where it went wrong."""

    def __init__(self, message: str, needle: str) -> None:
        super().__init__(message)
        self.needle = needle


@dataclass(frozen=True)
class Ref:
    ref: Reference


@dataclass(frozen=True)
class Literal:
    value: Any
    text: str


@dataclass(frozen=True)
class ListOf:
    items: tuple[Ref | Literal, ...]
    text: str


Operand = Ref | Literal | ListOf


@dataclass(frozen=True)
class Compare:
    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True)
class Not:
    expr: Expr


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    items: tuple[Expr, ...]


Expr = Ref | Literal | ListOf | Compare | Not | BoolOp


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            rest = text[position:].strip()
            raise ConditionSyntaxError(f"unexpected text {rest[:20]!r} in the condition", rest)
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.position = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ConditionSyntaxError("the condition ends too early", self.text.strip())
        self.position += 1
        return token

    def is_word(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token == ("word", word)

    def expr(self) -> Expr:
        items = [self.and_expr()]
        while self.is_word("or"):
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def and_expr(self) -> Expr:
        items = [self.not_expr()]
        while self.is_word("and"):
            self.take()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def not_expr(self) -> Expr:
        if self.is_word("not"):
            self.take()
            return Not(self.not_expr())
        return self.atom()

    def atom(self) -> Expr:
        if self.peek() == ("punct", "("):
            self.take()
            inner = self.expr()
            if self.take() != ("punct", ")"):
                raise ConditionSyntaxError("a `(` without its `)`", self.text.strip())
            return inner
        left = self.operand()
        token = self.peek()
        if token is not None and (token[0] == "op" or token == ("word", "in")):
            self.take()
            return Compare(token[1], left, self.operand())
        return left

    def operand(self) -> Operand:
        kind, text = self.take()
        if kind == "ref":
            match = _REF_BODY.fullmatch(text)
            assert match is not None  # the token pattern only matches ${...}
            try:
                return Ref(parse_reference(text, match.group("body")))
            except ValueError as exc:
                raise ConditionSyntaxError(str(exc), text) from None
        if kind == "number":
            return Literal(float(text) if any(c in text for c in ".eE") else int(text), text)
        if kind == "string":
            return Literal(text[1:-1], text)
        if kind == "word" and text in ("true", "false", "null"):
            return Literal({"true": True, "false": False, "null": None}[text], text)
        if (kind, text) == ("punct", "["):
            items: list[Ref | Literal] = []
            while self.peek() != ("punct", "]"):
                item = self.operand()
                if isinstance(item, ListOf):
                    raise ConditionSyntaxError("lists cannot be nested in a condition", item.text)
                items.append(item)
                if self.peek() == ("punct", ","):
                    self.take()
            self.take()
            return ListOf(tuple(items), "[" + ", ".join(_text(i) for i in items) + "]")
        raise ConditionSyntaxError(
            f"unexpected {text!r} in the condition: expected ${{...}}, a number, 'text', "
            "true, false, null or a [list]",
            text,
        )


def _text(operand: Operand) -> str:
    return operand.ref.text if isinstance(operand, Ref) else operand.text


def parse_condition(text: str) -> Expr:
    """The syntax tree of a ``when:`` condition; raises :class:`ConditionSyntaxError`."""
    parser = _Parser(text)
    if not parser.tokens:
        raise ConditionSyntaxError("the condition is empty", text)
    tree = parser.expr()
    extra = parser.peek()
    if extra is not None:
        raise ConditionSyntaxError(
            f"unexpected {extra[1]!r} after a complete condition (join conditions with and/or)",
            extra[1],
        )
    return tree


def references(tree: Expr) -> list[Reference]:
    """Every reference in the tree, in order."""
    if isinstance(tree, Ref):
        return [tree.ref]
    if isinstance(tree, ListOf):
        return [r for item in tree.items for r in references(item)]
    if isinstance(tree, Compare):
        return references(tree.left) + references(tree.right)
    if isinstance(tree, Not):
        return references(tree.expr)
    if isinstance(tree, BoolOp):
        return [r for item in tree.items for r in references(item)]
    return []


def _value(operand: Operand, lookup: Callable[[Reference], Any]) -> Any:
    if isinstance(operand, Ref):
        return lookup(operand.ref)
    if isinstance(operand, ListOf):
        return [_value(item, lookup) for item in operand.items]
    return operand.value


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == "in":
        return right is not None and left in right
    if left is None or right is None:  # an ordering against null is false, never an error
        return False
    ordering: dict[str, Callable[[Any, Any], bool]] = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return bool(ordering[op](left, right))


def evaluate(tree: Expr, lookup: Callable[[Reference], Any]) -> bool:
    """The condition's value; ``lookup`` gives each reference's value."""
    if isinstance(tree, Compare):
        return _compare(tree.op, _value(tree.left, lookup), _value(tree.right, lookup))
    if isinstance(tree, Not):
        return not evaluate(tree.expr, lookup)
    if isinstance(tree, BoolOp):
        if tree.op == "and":
            return all(evaluate(item, lookup) for item in tree.items)
        return any(evaluate(item, lookup) for item in tree.items)
    return bool(_value(tree, lookup))


__all__ = [
    "OPERATORS",
    "BoolOp",
    "Compare",
    "ConditionSyntaxError",
    "Expr",
    "ListOf",
    "Literal",
    "Not",
    "Ref",
    "evaluate",
    "parse_condition",
    "references",
]
