"""Checks of numeric parameters, done before any work: a NaN, an infinity or a value out of
range must stop the run with a one-line error, never turn into a blank result that reads as
"no leak" (a risk tool must not be made to say "safe" by a typo)."""

from __future__ import annotations

import math

from mirisk.errors import MiriskError


def check_number(name: str, value: float, low: float | None = None, high: float | None = None,
                 low_open: bool = False) -> float:
    """``value`` if it is finite and within [low, high] (``low_open``: strictly above low)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise MiriskError(f"{name} must be a finite number, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise MiriskError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value:g}")
    if high is not None and value > high:
        raise MiriskError(f"{name} must be <= {high:g}, got {value:g}")
    return value


def check_value_range(value_range: tuple[float, float], what: str = "the value range") -> tuple[float, float]:
    """A finite (low, high) with low < high."""
    if len(value_range) != 2:
        raise MiriskError(f"{what} must be two numbers low,high, got {value_range!r}")
    low, high = (check_number(what, float(bound)) for bound in value_range)
    if not low < high:
        raise MiriskError(f"{what} must be low,high with low < high, got {low:g},{high:g}")
    return low, high
