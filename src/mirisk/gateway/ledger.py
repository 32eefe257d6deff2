"""Query budgets, rate limits and the audit log, decided and written together.

``settle`` checks a key's rules and appends the request's log record in one immediate
transaction, so 32 clients racing on one key can never spend a query twice, and a response
leaves the gateway only after its record is committed. ``settle_all`` does the same for
several requests in one transaction (answers, refusals decided earlier, detector alerts),
so that one commit serves them all. ``precheck`` runs the same rules without writing, so an
exhausted key is refused before its body is read or the model runs.

Every refusal that a wait would lift says how long (``retry_after``, the ``Retry-After``
header), and a budgeted key's answers carry its limit, what is left and when the window
next frees queries (the IETF draft "RateLimit header fields for HTTP",
draft-ietf-httpapi-ratelimit-headers, ``RateLimit-Limit/-Remaining/-Reset``)."""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from mirisk.gateway.database import immediate
from mirisk.gateway.keys import ApiKey, get_key

RATE_PERIOD_SECONDS = 60.0
# A windowed budget is counted in buckets of 1/60 of the window (of any length, to the
# fraction of a second), so a check reads at most 61 rows however busy the key. A query is
# counted for at least the window and at most 1/60 longer: budget is never given back early.
WINDOW_BUCKETS = 60


@dataclass(frozen=True)
class Decision:
    """What happened to a request: ``answered`` or ``rejected:<reason>``, the HTTP status,
    a message for the client, the queries left to the key (None: unlimited), the id of
    the request's log record, the seconds after which a retry can succeed (None: no wait
    will), the key's budget per window or lifetime and the seconds until its window next
    frees queries (None: not windowed)."""

    decision: str
    status: int
    detail: str = ""
    queries_left: int | None = None
    request_id: int | None = None
    retry_after: int | None = None
    limit: int | None = None
    reset: int | None = None

    @property
    def answered(self) -> bool:
        return self.decision == "answered"


def _bucket(key: ApiKey, now: float) -> int:
    return int(now * WINDOW_BUCKETS // key.window_seconds)  # type: ignore[operator]


def _seconds_until(moment: float, now: float) -> int:
    return max(math.ceil(moment - now), 1)


@dataclass(frozen=True)
class Standing:
    """What a key may still spend now, and, for a windowed budget, the queries in each
    bucket still inside the window, oldest first, with the moment each bucket leaves it."""

    left: int | None
    buckets: tuple[tuple[float, int], ...] = ()
    cap_left: int | None = None
    now_leaves: float | None = None  # when queries spent now leave the window

    def freed_by(self, needed: int, now: float) -> int | None:
        """Seconds until ``needed`` more queries fit the window (None: waiting cannot help)."""
        if self.cap_left is not None and self.cap_left < needed:
            return None
        freed = self.left or 0
        for leaves, queries in self.buckets:
            freed += queries
            if freed >= needed:
                return _seconds_until(leaves, now)
        return None

    def reset(self, now: float, spending: bool) -> int | None:
        """Seconds until the window next frees queries, counting those being spent now."""
        if self.buckets:
            return _seconds_until(self.buckets[0][0], now)
        return _seconds_until(self.now_leaves, now) if spending and self.now_leaves is not None else None


def standing(connection: sqlite3.Connection, key: ApiKey, now: float) -> Standing:
    """The key's windowed and lifetime budgets, read together."""
    if key.budget is None:
        return Standing(None)
    if key.window_seconds is None:
        return Standing(max(key.budget - key.queries_used, 0))
    rows = connection.execute("SELECT bucket, queries FROM usage WHERE key_id = ? AND bucket >= ? ORDER BY bucket",
                              (key.id, _bucket(key, now) - WINDOW_BUCKETS)).fetchall()
    width = key.window_seconds / WINDOW_BUCKETS
    buckets = tuple(((bucket + WINDOW_BUCKETS + 1) * width, queries) for bucket, queries in rows)
    left = key.budget - sum(queries for _, queries in rows)
    now_leaves = (_bucket(key, now) + WINDOW_BUCKETS + 1) * width
    cap_left = None if key.total_budget is None else max(key.total_budget - key.queries_used, 0)
    return Standing(max(left if cap_left is None else min(left, cap_left), 0), buckets, cap_left, now_leaves)


def queries_left(connection: sqlite3.Connection, key: ApiKey, now: float) -> int | None:
    """The smaller of what remains of the key's windowed and lifetime budgets."""
    return standing(connection, key, now).left


def _rate_limit(key: ApiKey, throttled_per_minute: int) -> int | None:
    if key.flagged is not None and key.flag_action == "throttle":
        return min(key.rate_per_minute or throttled_per_minute, throttled_per_minute)
    return key.rate_per_minute


class _Account:
    """A key's standing in one transaction: its rules and remaining queries as read at the
    start, plus what the requests decided so far in the transaction spent."""

    def __init__(self, connection: sqlite3.Connection, key: ApiKey, now: float, throttled_per_minute: int) -> None:
        self.key, self.now = key, now
        self.standing = standing(connection, key, now)
        self.rate_limit = _rate_limit(key, throttled_per_minute)
        self.answered_recently = 0 if self.rate_limit is None else connection.execute(
            "SELECT COUNT(*) FROM requests WHERE key_id = ? AND decision = 'answered' AND time > ?",
            (key.id, now - RATE_PERIOD_SECONDS),
        ).fetchone()[0]
        self._connection = connection
        self.spent = 0

    def _rate_retry_after(self) -> int:
        """Seconds until the oldest answers that keep the key at its rate limit leave the minute."""
        (oldest,) = self._connection.execute(
            "SELECT time FROM requests WHERE key_id = ? AND decision = 'answered' AND time > ? ORDER BY time "
            "LIMIT 1 OFFSET ?", (self.key.id, self.now - RATE_PERIOD_SECONDS,
                                 self.answered_recently - self.rate_limit)).fetchone() or (self.now,)
        return _seconds_until(oldest + RATE_PERIOD_SECONDS, self.now)

    def decide(self, n_inputs: int) -> Decision:
        """Answer ``n_inputs`` more queries (spending them) or refuse, with the rule broken."""
        key = self.key
        if key.revoked is not None:
            return Decision("rejected:revoked", 401, "this API key was revoked")
        if key.flagged is not None and key.flag_action == "block":
            return Decision("rejected:blocked", 403, "this API key was blocked: its queries looked like a "
                                                     "model-inversion probe; ask the gateway's operator to review it")
        left = None if self.standing.left is None else self.standing.left - self.spent
        limits = {"limit": key.budget, "reset": self.standing.reset(self.now, spending=False)}
        if self.rate_limit is not None and self.answered_recently >= self.rate_limit:
            return Decision("rejected:rate", 429, f"rate limit of {self.rate_limit} requests per minute reached",
                            left, retry_after=self._rate_retry_after(), **limits)
        if left is not None and n_inputs > left:
            # What this transaction spent sits in the newest bucket, which leaves the window last.
            wait = self.standing.freed_by(n_inputs + self.spent, self.now)
            return Decision("rejected:budget", 429, f"this request needs {n_inputs} queries and the key has {left} "
                                                     "left; the request was not answered", left,
                            retry_after=wait, **limits)
        self.spent += n_inputs
        self.answered_recently += 1
        return Decision("answered", 200, queries_left=None if left is None else left - n_inputs, limit=key.budget,
                        reset=self.standing.reset(self.now, spending=True))

    def write(self, connection: sqlite3.Connection, now: float) -> None:
        """Record what this transaction spent: the lifetime count and the window's bucket."""
        if not self.spent:
            return
        key_id = self.key.id
        connection.execute("UPDATE keys SET queries_used = queries_used + ? WHERE id = ?", (self.spent, key_id))
        if self.key.window_seconds is not None:
            bucket = _bucket(self.key, now)
            (in_bucket,) = connection.execute(
                "INSERT INTO usage (key_id, bucket, queries) VALUES (?, ?, ?) "
                "ON CONFLICT (key_id, bucket) DO UPDATE SET queries = queries + excluded.queries RETURNING queries",
                (key_id, bucket, self.spent)).fetchone()
            if in_bucket == self.spent:  # a new bucket: the ones that left the window go
                connection.execute("DELETE FROM usage WHERE key_id = ? AND bucket < ?",
                                   (key_id, bucket - WINDOW_BUCKETS))


def precheck(connection: sqlite3.Connection, key_id: str, n_inputs: int, throttled_per_minute: int) -> Decision | None:
    """The refusal ``settle`` would give now (to the key as read afresh), without writing anything."""
    decision = _Account(connection, get_key(connection, key_id), time.time(), throttled_per_minute).decide(n_inputs)
    return None if decision.answered else decision


def _append(connection: sqlite3.Connection, now: float, key_id: str | None, decision: Decision, n_inputs: int,
            digests: list[str] | None, policy: str | None, outputs: str | None) -> int:
    cursor = connection.execute(
        "INSERT INTO requests (time, key_id, decision, status, n_inputs, input_digests, policy, outputs, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (now, key_id, decision.decision, decision.status, n_inputs, None if digests is None else ",".join(digests),
         policy, outputs, decision.detail),
    )
    return int(cursor.lastrowid)


@dataclass(frozen=True)
class Settlement:
    """A request whose answer waits on its decision: the key, each input's digest, the
    output policy, the outputs (JSON text) and a detector alert raised by this request
    (its reason and action), if any."""

    key_id: str
    digests: list[str]
    policy: str
    outputs: str
    alert: tuple[str, str] | None = None


@dataclass(frozen=True)
class Refusal:
    """A request refused before its decision (bad key, bad input, a precheck), to be logged
    with the next group commit."""

    key_id: str | None
    decision: Decision
    n_inputs: int = 0
    digests: list[str] | None = None
    policy: str | None = None


def _flag(connection: sqlite3.Connection, now: float, key_id: str, reason: str, action: str) -> None:
    connection.execute("INSERT INTO alerts (time, key_id, reason, action) VALUES (?, ?, ?, ?)",
                       (now, key_id, reason, action))
    connection.execute("UPDATE keys SET flagged = COALESCE(flagged, ?), flag_action = ? WHERE id = ?",
                       (now, action, key_id))


def settle_all(connection: sqlite3.Connection, settlements: Sequence[Settlement | Refusal],
               throttled_per_minute: int) -> list[Decision]:
    """Decide and log several requests in one transaction (a group commit): each answer
    spends its queries, in order, as if it were alone, each refusal is appended as decided,
    and every record is committed on return. The group's detector alerts are recorded first,
    so a key blocked by one of its requests is refused for all of them. Each key is read
    once and written once per transaction, whatever the group's size."""
    with immediate(connection):
        now = time.time()
        for item in settlements:
            if isinstance(item, Settlement) and item.alert is not None:
                _flag(connection, now, item.key_id, *item.alert)
        accounts: dict[str, _Account] = {}
        decided = []
        for item in settlements:
            if isinstance(item, Refusal):
                request_id = _append(connection, now, item.key_id, item.decision, item.n_inputs, item.digests,
                                     item.policy, None)
                decided.append(replace(item.decision, request_id=request_id))
                continue
            account = accounts.get(item.key_id)
            if account is None:
                account = accounts[item.key_id] = _Account(connection, get_key(connection, item.key_id), now,
                                                           throttled_per_minute)
            decision = account.decide(len(item.digests))
            request_id = _append(connection, now, item.key_id, decision, len(item.digests), item.digests,
                                 item.policy, item.outputs if decision.answered else None)
            decided.append(replace(decision, request_id=request_id))
        for account in accounts.values():
            account.write(connection, now)
    return decided


def settle(connection: sqlite3.Connection, key_id: str, digests: list[str], policy: str, outputs: str,
           throttled_per_minute: int) -> Decision:
    """Spend ``len(digests)`` queries and log the answer (``outputs``, as JSON text), or log
    the refusal; atomically."""
    return settle_all(connection, [Settlement(key_id, digests, policy, outputs)], throttled_per_minute)[0]


def log_refusal(connection: sqlite3.Connection, refusal: Refusal) -> Decision:
    """Append one refused request to the log in its own transaction (outside a server's
    group commit)."""
    return settle_all(connection, [refusal], 0)[0]


def flag_key(connection: sqlite3.Connection, key_id: str, reason: str, action: str) -> None:
    """Record a detector alert against a key and the action taken (alert, throttle or block)."""
    with immediate(connection):
        _flag(connection, time.time(), key_id, reason, action)
