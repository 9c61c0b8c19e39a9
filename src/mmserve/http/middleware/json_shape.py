"""Bounding the shape of JSON a caller sends: nesting depth and number of values.

A JSON text nested thousands of levels deep makes every recursive walk of it fail (Python's
parser, validators, pickling to replicas, the store) with a ``RecursionError`` far from the
door; a body of a million tiny values costs far more than its bytes. So the raw text is
scanned *before* it is parsed: one regular expression finds the brackets, strings and
scalars (a base64 image is a single string token), and the scan stops at the first bracket
past ``server.limits.max_json_depth`` or the first value past ``server.limits.max_json_nodes``.
Only a text that passes is handed to :func:`json.loads`, whose depth is then bounded too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mmserve.errors import InputTooLargeError

# strings (escapes included) | an opening bracket | a closing one | a scalar
_TOKEN = re.compile(
    rb'"[^"\\]*(?:\\.[^"\\]*)*"|([\[{])|([\]}])|-?[0-9][0-9.eE+-]*|true|false|null|NaN|-?Infinity'
)


@dataclass(frozen=True)
class JsonLimits:
    """The most nesting levels and values one JSON text may have."""

    max_depth: int
    max_nodes: int


def check_json_shape(data: bytes | str, limits: JsonLimits, *, where: str = "the body") -> int:
    """The number of values (keys included) of JSON text ``data``; 413 naming the config key
    when it nests deeper than ``limits.max_depth`` or has more than ``limits.max_nodes``.

    Text that is not JSON at all passes through (the parser refuses it afterwards)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    depth = nodes = 0
    for token in _TOKEN.finditer(raw):
        opening, closing = token.group(1), token.group(2)
        if closing is not None:
            depth = max(depth - 1, 0)
            continue
        nodes += 1
        if nodes > limits.max_nodes:
            raise InputTooLargeError(
                f"{where} has more than {limits.max_nodes} JSON values, over the limit "
                "(server.limits.max_json_nodes)",
                name=where,
            )
        if opening is not None:
            depth += 1
            if depth > limits.max_depth:
                raise InputTooLargeError(
                    f"{where} nests JSON arrays and objects deeper than {limits.max_depth} "
                    "levels, over the limit (server.limits.max_json_depth)",
                    name=where,
                    hint="flatten the structure",
                )
    return nodes


def surely_within(data: bytes, limits: JsonLimits) -> bool:
    """Whether JSON text ``data`` cannot exceed ``limits``, from byte counts alone (no scan).

    Sound upper bounds: the depth is at most the number of opening brackets, and every value
    or key but the first follows one of ``[ { , :``, so the values are at most one more than
    those bytes (counted inside strings too, which only over-counts). A body that is mostly one
    long string -- a base64 image -- has almost none of them and skips :func:`check_json_shape`
    (~10 ms per MB here) for four ``bytes.count`` passes. False means only "scan it"."""
    opening = data.count(b"[") + data.count(b"{")
    if opening > limits.max_depth:
        return False
    return 1 + opening + data.count(b",") + data.count(b":") <= limits.max_nodes


__all__ = ["JsonLimits", "check_json_shape", "surely_within"]
