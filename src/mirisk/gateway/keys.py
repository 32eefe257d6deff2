"""API keys: created once, stored only as a SHA-256 digest, checked in constant time.

A key reads ``mk_<id>_<secret>``. The id is public (it names the key in the log and in
``mirisk keys list``); the 256-bit secret is shown once at creation and never stored or
logged. A fast digest suffices for random secrets of that length (no password to guess)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from mirisk.access.policies import parse_policy
from mirisk.errors import MiriskError
from mirisk.gateway.database import immediate, served_classes
from mirisk.validation import check_budget

PREFIX = "mk_"
KEY_PATTERN = re.compile(r"^mk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
WINDOW_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_WINDOW_SECONDS = 3650 * 86400  # ten years
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """One key's rules: its output policy (None: the server's), its query budget (per
    ``window_seconds`` when set, else for its lifetime), an optional lifetime cap on top of
    a windowed budget, a request rate limit, and whether it was revoked or flagged."""

    id: str
    label: str
    policy: str | None
    budget: int | None
    window_seconds: int | None
    total_budget: int | None
    rate_per_minute: int | None
    queries_used: int
    created: float
    revoked: float | None
    flagged: float | None
    flag_action: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_window(text: str) -> int:
    """'90s', '15m', '12h', '1d' -> seconds."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if not match or int(match.group(1)) == 0:
        raise MiriskError(f"window must be a positive number with a unit s, m, h or d (e.g. 1d), got {text!r}")
    seconds = int(match.group(1)) * WINDOW_UNITS[match.group(2)]
    if seconds > MAX_WINDOW_SECONDS:
        raise MiriskError(f"window must be at most {MAX_WINDOW_SECONDS // 86400}d, got {text.strip()!r}; for a "
                          "lifetime budget, leave --window out")
    return seconds


def format_window(seconds: int) -> str:
    """86400 -> '1d', 5400 -> '90m': the largest unit that divides it."""
    for unit, size in sorted(WINDOW_UNITS.items(), key=lambda item: -item[1]):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("every whole number of seconds has a unit")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(connection: sqlite3.Connection, label: str = "", policy: str | None = None, budget: int | None = None,
               window: str | None = None, total_budget: int | None = None,
               rate_per_minute: int | None = None) -> tuple[ApiKey, str]:
    """Store a new key's digest and rules; return the key and its clear text (shown once)."""
    if policy is not None:
        parsed = parse_policy(policy)
        classes = served_classes(connection)
        if classes is not None:
            parsed.check_classes(classes)  # the model a server last served from this database
        policy = parsed.spec
    for value, name in ((budget, "the budget"), (total_budget, "the total budget"), (rate_per_minute, "the rate limit")):
        check_budget(name, value)
    window_seconds = None if window is None else parse_window(window)
    if window_seconds is not None and budget is None:
        raise MiriskError("--window sets the period of --budget; give a --budget too")
    if total_budget is not None and window_seconds is None:
        raise MiriskError("--total-budget caps a windowed --budget; without --window, --budget is already the total")
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    with immediate(connection):
        connection.execute(
            "INSERT INTO keys (id, secret_hash, label, policy, budget, window_seconds, total_budget, rate_per_minute,"
            " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key_id, _digest(secret), label, policy, budget, window_seconds, total_budget, rate_per_minute, time.time()),
        )
    return get_key(connection, key_id), f"{PREFIX}{key_id}_{secret}"


_COLUMNS = ("id, label, policy, budget, window_seconds, total_budget, rate_per_minute, queries_used, created, revoked,"
            " flagged, flag_action")


def get_key(connection: sqlite3.Connection, key_id: str) -> ApiKey:
    row = connection.execute(f"SELECT {_COLUMNS} FROM keys WHERE id = ?", (key_id,)).fetchone()
    if row is None:
        raise MiriskError(f"no key with id {key_id!r} in this database")
    return ApiKey(*row)


def list_keys(connection: sqlite3.Connection) -> list[ApiKey]:
    return [ApiKey(*row) for row in connection.execute(f"SELECT {_COLUMNS} FROM keys ORDER BY created")]


def revoke_key(connection: sqlite3.Connection, key_id: str) -> ApiKey:
    """Mark a key revoked (kept, with its log, for the record); revoking twice is an error."""
    key = get_key(connection, key_id)
    if key.revoked is not None:
        raise MiriskError(f"key {key_id} was already revoked")
    with immediate(connection):
        connection.execute("UPDATE keys SET revoked = ? WHERE id = ?", (time.time(), key_id))
    return get_key(connection, key_id)


def _key_row(connection: sqlite3.Connection, key_id: str | None) -> tuple[str, ApiKey] | None:
    row = None if key_id is None else connection.execute(
        f"SELECT secret_hash, {_COLUMNS} FROM keys WHERE id = ?", (key_id,)).fetchone()
    return None if row is None else (row[0], ApiKey(*row[1:]))


def _check(token: str, stored: Callable[[str | None], tuple[str, ApiKey] | None]) -> tuple[str | None, ApiKey | None]:
    match = KEY_PATTERN.match(token)
    key_id, secret = (match.group(1), match.group(2)) if match else (None, token)
    entry = stored(key_id)
    valid = hmac.compare_digest(_digest(secret), entry[0] if entry else _DUMMY_HASH) and entry is not None
    if not valid:
        return (key_id if entry else None), None
    return key_id, entry[1]  # type: ignore[index]


def authenticate(connection: sqlite3.Connection, token: str) -> tuple[str | None, ApiKey | None]:
    """(the id of the stored key the token names, the key if the token's secret is right).

    The digest comparison runs in constant time, and runs even when the id is unknown. A
    revoked key still authenticates here, so that its refusal is logged under its id."""
    return _check(token, lambda key_id: _key_row(connection, key_id))


class KeyCache:
    """:func:`authenticate` for a server, without a database read for keys it has seen.

    A key's id, digest and policy never change; its other rules (revoked, flagged, budget
    used) may be stale here, so they serve only as hints. The ledger's decision reads them
    afresh in its transaction; :meth:`forget` a key whose state is known to have changed."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, ApiKey]] = {}

    def authenticate(self, connection: sqlite3.Connection, token: str) -> tuple[str | None, ApiKey | None]:
        read: list[tuple[str, ApiKey]] = []

        def stored(key_id: str | None) -> tuple[str, ApiKey] | None:
            entry = None if key_id is None else self._entries.get(key_id)
            if entry is None and (entry := _key_row(connection, key_id)) is not None:
                read.append(entry)
            return entry

        key_id, key = _check(token, stored)
        if key is not None and read:  # only keys that proved their secret are kept
            self._entries[key.id] = read[0]
        return key_id, key

    def forget(self, key_id: str) -> None:
        self._entries.pop(key_id, None)
