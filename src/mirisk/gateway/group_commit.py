"""Group commit: requests that reach the ledger within two turns of the event loop are
decided and logged in one SQLite transaction, and each waits for that commit.

Every guarantee of a lone ``settle`` holds (each request spends its queries in order as if
alone, and no answer leaves before its record is committed); one commit serves a whole
group, which is most of what a durable decision costs. Refusals join the same commits.

The event loop never waits on another process's write lock: its connection does not wait
at all, and a group that finds the database locked is retried on a worker thread for up to
``lock_wait`` seconds; past that, each of its requests fails with :class:`DatabaseBusy`
(nothing of the group was answered or written)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from mirisk.gateway.database import BackgroundCheckpointer
from mirisk.gateway.ledger import Decision, Refusal, Settlement, settle_all

LOG = logging.getLogger("mirisk.gateway")
Item = Settlement | Refusal


class DatabaseBusy(Exception):
    """The database's write lock stayed with another process past the wait allowed."""


def is_locked(error: sqlite3.OperationalError) -> bool:
    return error.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class GroupCommitter:
    """Collects settlements and refusals on the running event loop and commits them together.
    ``connection`` gives the calling thread's connection: on the loop's thread one that
    never waits for a lock, on the worker thread one that waits up to its busy timeout."""

    def __init__(self, connection: Callable[[], sqlite3.Connection], throttled_per_minute: int,
                 checkpointer: BackgroundCheckpointer) -> None:
        self._connection = connection
        self._throttled_per_minute = throttled_per_minute
        self._checkpointer = checkpointer
        self._waiting: list[tuple[Item, asyncio.Future[Decision]]] = []
        self._retrier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mirisk-locked-commit")

    async def settle(self, item: Item) -> Decision:
        """The request's decision (a refusal's, with its record id), once its record is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Decision] = loop.create_future()
        self._waiting.append((item, future))
        if len(self._waiting) == 1:
            # The first of a group: commit after this turn of the loop and the next, so that
            # requests whose bodies finish arriving meanwhile join. Under 8 clients, groups
            # grow from 2.0 to 4.5 requests on average (counted under wrk -c8; BENCHMARKS.md).
            loop.call_soon(loop.call_soon, self._commit)
        return await future

    def _settle(self, waiting: Sequence[tuple[Item, asyncio.Future[Decision]]]) -> list[Decision]:
        decisions = settle_all(self._connection(), [item for item, _ in waiting], self._throttled_per_minute)
        self._checkpointer.committed()
        return decisions

    def _commit(self) -> None:
        waiting, self._waiting = self._waiting, []
        try:
            self._resolve(waiting, self._settle(waiting))
        except sqlite3.OperationalError as error:
            if not is_locked(error):
                self._fail(waiting, error)
                return
            loop = asyncio.get_running_loop()
            retried = loop.run_in_executor(self._retrier, self._settle, waiting)
            retried.add_done_callback(lambda done: self._retried(waiting, done))
        except Exception as error:  # the transaction rolled back: no request of the group was answered
            self._fail(waiting, error)

    def _retried(self, waiting: list[tuple[Item, asyncio.Future[Decision]]], done: asyncio.Future) -> None:
        error = done.exception()
        if error is None:
            self._resolve(waiting, done.result())
        elif isinstance(error, sqlite3.OperationalError) and is_locked(error):
            LOG.error("the gateway database stayed locked by another process; %d requests got 503: %s",
                      len(waiting), error)
            self._fail(waiting, DatabaseBusy(str(error)))
        else:
            self._fail(waiting, error)

    @staticmethod
    def _resolve(waiting: Sequence[tuple[Item, asyncio.Future[Decision]]], decisions: list[Decision]) -> None:
        for (_, future), decision in zip(waiting, decisions, strict=True):
            if not future.done():
                future.set_result(decision)

    @staticmethod
    def _fail(waiting: Sequence[tuple[Item, asyncio.Future[Decision]]], error: BaseException) -> None:
        for _, future in waiting:
            if not future.done():
                future.set_exception(error)
