"""Sizes in bytes written as people write them: ``4Gi``, ``4GiB``, ``512Mi``, ``2G``, ``1e9``."""

from __future__ import annotations

import re

_UNITS = {
    "": 1,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
    "t": 10**12,
    "ki": 2**10,
    "mi": 2**20,
    "gi": 2**30,
    "ti": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([kmgt]i?)?b?\s*$", re.IGNORECASE)


def parse_bytes(value: str | float) -> int:
    """Bytes of ``value``: a number, or a number with a unit (``Gi``/``GiB`` are powers of
    1024, ``G``/``GB`` powers of 1000, as in Kubernetes); raises ValueError otherwise."""
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a size cannot be negative: {value}")
        return int(value)
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(f"not a size: {value!r} (write e.g. 4Gi, 512Mi or a number of bytes)")
    number, unit = match.groups()
    return int(float(number) * _UNITS[(unit or "").lower()])


__all__ = ["parse_bytes"]
