"""Refused authentications, counted rather than logged one by one.

A request without a valid key (none, a malformed one, an unknown id or a wrong secret) is
not a row of the request log: it is counted per minute, client address, key id named (empty
when none) and decision, and the counts are written as one row each (``auth_refusals``) once
their minute is over, or when the server stops. So a flood of bad keys grows the database by
a row per client and minute instead of a row (and a commit) per request. A count not yet
written when the process is killed is lost: at most the last minute's.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable

from mirisk.gateway.database import immediate
from mirisk.gateway.group_commit import is_locked

BUCKET_SECONDS = 60
MAX_BUCKETS = 10_000  # counts held before they are written early
UPSERT = ("INSERT INTO auth_refusals (minute, client, key_id, decision, refusals) VALUES (?, ?, ?, ?, ?) "
          "ON CONFLICT (minute, client, key_id, decision) DO UPDATE SET refusals = refusals + excluded.refusals")

Bucket = tuple[int, str, str, str]


class RefusalCounts:
    """Counts of refused authentications, written to the database a minute at a time.
    ``connection`` gives the calling thread's connection."""

    def __init__(self, connection: Callable[[], sqlite3.Connection]) -> None:
        self._connection = connection
        self._counts: Counter[Bucket] = Counter()
        self._oldest_minute: int | None = None

    def count(self, client: str | None, key_id: str | None, decision: str, now: float) -> None:
        """Count one refusal; write the counts of minutes already over."""
        minute = int(now // BUCKET_SECONDS)
        self._counts[(minute, client or "", key_id or "", decision)] += 1
        if self._oldest_minute is None:
            self._oldest_minute = minute
        if len(self._counts) >= MAX_BUCKETS or self._oldest_minute < minute:
            self.write()

    def write(self) -> None:
        """Write every count held (added to a row already there). A database locked by
        another process keeps them here for the next try."""
        if not self._counts:
            return
        rows = [(*bucket, refusals) for bucket, refusals in self._counts.items()]
        try:
            with immediate(self._connection()) as connection:
                connection.executemany(UPSERT, rows)
        except sqlite3.OperationalError as error:
            if is_locked(error):
                return
            raise
        self._counts.clear()
        self._oldest_minute = None

    @property
    def held(self) -> int:
        """Refusals counted but not yet written."""
        return sum(self._counts.values())
