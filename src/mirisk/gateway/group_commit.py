"""Group commit: requests that reach the ledger within two turns of the event loop are
decided and logged in one SQLite transaction, and each waits for that commit.

Every guarantee of a lone ``settle`` holds (each request spends its queries in order as if
alone, and no answer leaves before its record is committed); one commit serves a whole
group, which is most of what a durable decision costs."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable

from mirisk.gateway.database import BackgroundCheckpointer
from mirisk.gateway.ledger import Decision, Settlement, settle_all


class GroupCommitter:
    """Collects settlements on the running event loop and commits them together."""

    def __init__(self, connection: Callable[[], sqlite3.Connection], throttled_per_minute: int,
                 checkpointer: BackgroundCheckpointer) -> None:
        self._connection = connection
        self._throttled_per_minute = throttled_per_minute
        self._checkpointer = checkpointer
        self._waiting: list[tuple[Settlement, asyncio.Future[Decision]]] = []

    async def settle(self, settlement: Settlement) -> Decision:
        """The request's decision, once its record is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Decision] = loop.create_future()
        self._waiting.append((settlement, future))
        if len(self._waiting) == 1:
            # The first of a group: commit after this turn of the loop and the next, so that
            # requests whose bodies finish arriving meanwhile join. Under 8 clients, groups
            # grow from 2.0 to 4.5 requests on average (counted under wrk -c8; BENCHMARKS.md).
            loop.call_soon(loop.call_soon, self._commit)
        return await future

    def _commit(self) -> None:
        waiting, self._waiting = self._waiting, []
        try:
            decisions = settle_all(self._connection(), [settlement for settlement, _ in waiting],
                                   self._throttled_per_minute)
        except Exception as error:  # the transaction rolled back: no request of the group was answered
            for _, future in waiting:
                if not future.done():
                    future.set_exception(error)
            return
        self._checkpointer.committed()
        for (_, future), decision in zip(waiting, decisions, strict=True):
            if not future.done():
                future.set_result(decision)
