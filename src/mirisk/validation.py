"""Checks of the numbers and switches a user gives, shared by the CLI, the audit config and
the API, done before any work: a NaN, an infinity, a value out of range or a boolean posing
as a number must stop the run with a one-line error, never turn into a blank result that
reads as "no leak" (a risk tool must not be made to say "safe" by a typo)."""

from __future__ import annotations

import math

from mirisk.errors import MiriskError

FLOAT32_MAX = 3.4028234663852886e38  # the computations run in float32


def check_number(name: str, value: float, low: float | None = None, high: float | None = None,
                 low_open: bool = False) -> float:
    """``value`` if it is finite and within [low, high] (``low_open``: strictly above low)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise MiriskError(f"{name} must be a finite number, got {value!r}")
    if abs(value) > FLOAT32_MAX:
        raise MiriskError(f"{name} must be a number within float32's range (about 3.4e38), got {value:g}")
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


MAX_SEED = 2**32 - 1  # numpy's and torch's generators take any seed in 0..2**32-1
MAX_COUNT = 2**63 - 1  # SQLite's largest integer: more queries than any attacker makes


def check_whole(name: str, value: object, minimum: int = 1, maximum: int = MAX_COUNT) -> int:
    """``value`` if it is an integer (not a boolean, not 2.5, not NaN) in ``minimum..maximum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MiriskError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise MiriskError(f"{name} must be at least {minimum:,}, got {value:,}")
    if value > maximum:
        raise MiriskError(f"{name} must be at most {maximum:,}, got {value:,}")
    return value


def check_seed(name: str, value: object) -> int:
    """A seed: a whole number in 0..2**32-1."""
    return check_whole(name, value, 0, MAX_SEED)


def check_budget(name: str, value: object) -> int | None:
    """A query budget: None (unlimited) or a whole number of at least 1."""
    return None if value is None else check_whole(name, value)


def check_switch(name: str, value: object) -> bool:
    """A yes/no setting: a real boolean (not "yes", not 1)."""
    if not isinstance(value, bool):
        raise MiriskError(f"{name} must be true or false, got {value!r}")
    return value
