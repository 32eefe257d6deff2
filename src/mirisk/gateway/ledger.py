"""Query budgets, rate limits and the audit log, decided and written together.

``settle`` checks a key's rules and appends the request's log record in one immediate
transaction, so 32 clients racing on one key can never spend a query twice, and a response
leaves the gateway only after its record is committed. ``settle_all`` does the same for
several requests in one transaction, so that one commit serves them all. ``precheck`` runs
the same rules without writing, so an exhausted key is refused before the model runs."""

from __future__ import annotations

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
    a message for the client, the queries left to the key (None: unlimited) and the id of
    the request's log record."""

    decision: str
    status: int
    detail: str = ""
    queries_left: int | None = None
    request_id: int | None = None
    retry_after: int | None = None

    @property
    def answered(self) -> bool:
        return self.decision == "answered"


def _bucket(key: ApiKey, now: float) -> int:
    return int(now * WINDOW_BUCKETS // key.window_seconds)  # type: ignore[operator]


def queries_left(connection: sqlite3.Connection, key: ApiKey, now: float) -> int | None:
    """The smaller of what remains of the key's windowed and lifetime budgets."""
    if key.budget is None:
        return None
    if key.window_seconds is None:
        return max(key.budget - key.queries_used, 0)
    (in_window,) = connection.execute(
        "SELECT COALESCE(SUM(queries), 0) FROM usage WHERE key_id = ? AND bucket >= ?",
        (key.id, _bucket(key, now) - WINDOW_BUCKETS),
    ).fetchone()
    left = key.budget - in_window
    if key.total_budget is not None:
        left = min(left, key.total_budget - key.queries_used)
    return max(left, 0)


def _rate_limit(key: ApiKey, throttled_per_minute: int) -> int | None:
    if key.flagged is not None and key.flag_action == "throttle":
        return min(key.rate_per_minute or throttled_per_minute, throttled_per_minute)
    return key.rate_per_minute


class _Account:
    """A key's standing in one transaction: its rules and remaining queries as read at the
    start, plus what the requests decided so far in the transaction spent."""

    def __init__(self, connection: sqlite3.Connection, key: ApiKey, now: float, throttled_per_minute: int) -> None:
        self.key = key
        self.left = queries_left(connection, key, now)
        self.rate_limit = _rate_limit(key, throttled_per_minute)
        self.answered_recently = 0 if self.rate_limit is None else connection.execute(
            "SELECT COUNT(*) FROM requests WHERE key_id = ? AND decision = 'answered' AND time > ?",
            (key.id, now - RATE_PERIOD_SECONDS),
        ).fetchone()[0]
        self.spent = 0

    def decide(self, n_inputs: int) -> Decision:
        """Answer ``n_inputs`` more queries (spending them) or refuse, with the rule broken."""
        key = self.key
        if key.revoked is not None:
            return Decision("rejected:revoked", 401, "this API key was revoked")
        if key.flagged is not None and key.flag_action == "block":
            return Decision("rejected:blocked", 403, "this API key was blocked: its queries looked like a "
                                                     "model-inversion probe; ask the gateway's operator to review it")
        left = None if self.left is None else self.left - self.spent
        if self.rate_limit is not None and self.answered_recently >= self.rate_limit:
            return Decision("rejected:rate", 429, f"rate limit of {self.rate_limit} requests per minute reached",
                            left, retry_after=int(RATE_PERIOD_SECONDS))
        if left is not None and n_inputs > left:
            return Decision("rejected:budget", 429, f"this request needs {n_inputs} queries and the key has {left} "
                                                     "left; the request was not answered", left)
        self.spent += n_inputs
        self.answered_recently += 1
        return Decision("answered", 200, queries_left=None if left is None else left - n_inputs)

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


def precheck(connection: sqlite3.Connection, key: ApiKey, n_inputs: int, throttled_per_minute: int) -> Decision | None:
    """The refusal ``settle`` would give now (to ``key`` as just read), without writing anything."""
    decision = _Account(connection, key, time.time(), throttled_per_minute).decide(n_inputs)
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
    output policy and the outputs (JSON text)."""

    key_id: str
    digests: list[str]
    policy: str
    outputs: str


def settle_all(connection: sqlite3.Connection, settlements: Sequence[Settlement],
               throttled_per_minute: int) -> list[Decision]:
    """Decide and log several requests in one transaction (a group commit): each spends
    its queries, in order, as if it were alone, and every record is committed on return.
    Each key is read once and written once per transaction, whatever the group's size."""
    with immediate(connection):
        now = time.time()
        accounts: dict[str, _Account] = {}
        decided = []
        for settlement in settlements:
            account = accounts.get(settlement.key_id)
            if account is None:
                account = accounts[settlement.key_id] = _Account(connection, get_key(connection, settlement.key_id),
                                                                 now, throttled_per_minute)
            decision = account.decide(len(settlement.digests))
            request_id = _append(connection, now, settlement.key_id, decision, len(settlement.digests),
                                 settlement.digests, settlement.policy,
                                 settlement.outputs if decision.answered else None)
            decided.append(replace(decision, request_id=request_id))
        for account in accounts.values():
            account.write(connection, now)
    return decided


def settle(connection: sqlite3.Connection, key_id: str, digests: list[str], policy: str, outputs: str,
           throttled_per_minute: int) -> Decision:
    """Spend ``len(digests)`` queries and log the answer (``outputs``, as JSON text), or log
    the refusal; atomically."""
    return settle_all(connection, [Settlement(key_id, digests, policy, outputs)], throttled_per_minute)[0]


def log_refusal(connection: sqlite3.Connection, key_id: str | None, decision: Decision, n_inputs: int = 0,
                digests: list[str] | None = None, policy: str | None = None) -> Decision:
    """Append a refused request (bad key, bad input, a precheck refusal) to the log."""
    with immediate(connection):
        request_id = _append(connection, time.time(), key_id, decision, n_inputs, digests, policy, None)
    return replace(decision, request_id=request_id)


def flag_key(connection: sqlite3.Connection, key_id: str, reason: str, action: str) -> None:
    """Record a detector alert against a key and the action taken (alert, throttle or block)."""
    with immediate(connection):
        now = time.time()
        connection.execute("INSERT INTO alerts (time, key_id, reason, action) VALUES (?, ?, ?, ?)",
                            (now, key_id, reason, action))
        connection.execute("UPDATE keys SET flagged = COALESCE(flagged, ?), flag_action = ? WHERE id = ?",
                           (now, action, key_id))
