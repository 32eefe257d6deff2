"""Group commit: requests that reach the ledger within two turns of the event loop are
answered by the model in one forward pass, decided and logged in one SQLite transaction,
and each waits for that commit.

Every guarantee of a lone ``settle`` holds (each request spends its queries in order as if
alone, and no answer leaves before its record is committed); one forward pass and one
commit serve a whole group, which is most of what a small model's answer and a durable
decision cost. Refusals join the same commits.

The event loop never waits on another process's write lock: its connection does not wait
at all, and a group that finds the database locked is retried on a worker thread until
``lock_wait`` seconds after it was first refused (groups queued behind it do not each wait
that long again); past that, each of its requests fails with :class:`DatabaseBusy`
(nothing of the group was answered or written)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import cast

import numpy as np

from mirisk.gateway.database import LOCK_WAIT_SECONDS, BackgroundCheckpointer
from mirisk.gateway.ledger import Decision, Refusal, Settlement, settle_all

LOG = logging.getLogger("mirisk.gateway")


@dataclass(frozen=True)
class Pending:
    """A request admitted to the model, to be answered with its group: the key, each
    input's digest, the output policy, the validated batch and a detector alert (its
    reason and action) raised by this request, if any."""

    key_id: str
    digests: list[str]
    policy: str
    batch: np.ndarray
    alert: tuple[str, str] | None = None


Item = Settlement | Refusal
# Each pending request's outputs (JSON text), for a group's pending requests in order.
AnswerGroup = Callable[[Sequence[Pending]], list[str]]


class DatabaseBusy(Exception):
    """The database's write lock stayed with another process past the wait allowed."""


def is_locked(error: sqlite3.OperationalError) -> bool:
    return error.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def no_model(pending: Sequence[Pending]) -> list[str]:
    """The answer of a committer made without a model: it takes settlements and refusals only."""
    raise TypeError("this group committer has no model to answer pending requests")


class GroupCommitter:
    """Collects pending answers, settlements and refusals on the running event loop, answers
    the pending ones together with ``answer`` and commits them all at once. ``connection``
    gives the calling thread's connection: on the loop's thread one that never waits for a
    lock, on the worker thread one that waits up to its busy timeout."""

    def __init__(self, connection: Callable[[], sqlite3.Connection], throttled_per_minute: int,
                 checkpointer: BackgroundCheckpointer, answer: AnswerGroup = no_model,
                 lock_wait: float = LOCK_WAIT_SECONDS) -> None:
        self._connection = connection
        self.lock_wait = lock_wait
        self._throttled_per_minute = throttled_per_minute
        self._checkpointer = checkpointer
        self._answer = answer
        self._waiting: list[tuple[Item | Pending, asyncio.Future[tuple[Decision, Item]]]] = []
        self._retrier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mirisk-locked-commit")

    async def settle(self, item: Item) -> Decision:
        """The request's decision (a refusal's, with its record id), once its record is committed."""
        return (await self._join(item))[0]

    async def answer(self, pending: Pending) -> tuple[Decision, Settlement]:
        """The request's decision and its answer (outputs and all), once its record is committed."""
        decision, settlement = await self._join(pending)
        return decision, cast(Settlement, settlement)  # a pending request is settled as its answer

    def _join(self, item: Item | Pending) -> asyncio.Future[tuple[Decision, Item]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Decision, Item]] = loop.create_future()
        self._waiting.append((item, future))
        if len(self._waiting) == 1:
            # The first of a group: commit after this turn of the loop and the next, so that
            # requests whose bodies finish arriving meanwhile join. Under 8 clients, groups
            # grow from 2.0 to 4.5 requests on average (counted under wrk -c8; BENCHMARKS.md).
            loop.call_soon(loop.call_soon, self._commit)
        return future

    def _answered(self, items: Sequence[Item | Pending]) -> list[Item]:
        """The group with its pending requests answered by the model, in one call."""
        pending = [item for item in items if isinstance(item, Pending)]
        if not pending:
            return list(items)  # type: ignore[arg-type]
        outputs = iter(self._answer(pending))
        return [Settlement(item.key_id, item.digests, item.policy, next(outputs), item.alert)
                if isinstance(item, Pending) else item for item in items]

    def _settle(self, items: Sequence[Item]) -> list[Decision]:
        decisions = settle_all(self._connection(), items, self._throttled_per_minute)
        self._checkpointer.committed()
        return decisions

    def _settle_by(self, items: Sequence[Item], deadline: float) -> list[Decision]:
        """``_settle`` on the worker thread, waiting for the lock no later than ``deadline``."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DatabaseBusy("the write lock was still held when this group's turn to wait for it came")
        connection = self._connection()
        connection.execute(f"PRAGMA busy_timeout={max(int(remaining * 1000), 1)}")
        return self._settle(items)

    def _commit(self) -> None:
        waiting, self._waiting = self._waiting, []
        try:
            items = self._answered([item for item, _ in waiting])
        except Exception as error:  # nothing of the group was answered or written
            self._fail(waiting, error)
            return
        try:
            self._resolve(waiting, items, self._settle(items))
        except sqlite3.OperationalError as error:
            if not is_locked(error):
                self._fail(waiting, error)
                return
            loop = asyncio.get_running_loop()
            retried = loop.run_in_executor(self._retrier, self._settle_by, items, time.monotonic() + self.lock_wait)
            retried.add_done_callback(lambda done: self._retried(waiting, items, done))
        except Exception as error:  # the transaction rolled back: no request of the group was answered
            self._fail(waiting, error)

    def _retried(self, waiting: list[tuple[Item | Pending, asyncio.Future[tuple[Decision, Item]]]],
                 items: list[Item], done: asyncio.Future) -> None:
        error = done.exception()
        if error is None:
            self._resolve(waiting, items, done.result())
        elif isinstance(error, DatabaseBusy) or isinstance(error, sqlite3.OperationalError) and is_locked(error):
            LOG.error("the gateway database stayed locked by another process; %d requests got 503: %s",
                      len(waiting), error)
            self._fail(waiting, DatabaseBusy(str(error)))
        else:
            self._fail(waiting, error)

    @staticmethod
    def _resolve(waiting: Sequence[tuple[Item | Pending, asyncio.Future[tuple[Decision, Item]]]],
                 items: Sequence[Item], decisions: list[Decision]) -> None:
        for (_, future), item, decision in zip(waiting, items, decisions, strict=True):
            if not future.done():
                future.set_result((decision, item))

    @staticmethod
    def _fail(waiting: Sequence[tuple[Item | Pending, asyncio.Future[tuple[Decision, Item]]]],
              error: BaseException) -> None:
        for _, future in waiting:
            if not future.done():
                future.set_exception(error)
