"""Requests that reach the ledger in the same turn of the event loop share one commit."""

import asyncio
import sqlite3

import pytest

from mirisk.errors import MiriskError
from mirisk.gateway.database import BackgroundCheckpointer, connect
from mirisk.gateway.group_commit import GroupCommitter
from mirisk.gateway.keys import create_key
from mirisk.gateway.ledger import Settlement

THROTTLE = 10**9


def committer_for(path):
    connection = connect(path)
    statements: list[str] = []
    connection.set_trace_callback(statements.append)
    return connection, statements, GroupCommitter(lambda: connection, THROTTLE, BackgroundCheckpointer(path))


def test_concurrent_requests_share_a_commit_and_keep_their_order(tmp_path):
    connection, statements, committer = committer_for(tmp_path / "gateway.db")
    key, _ = create_key(connection, budget=7)

    async def six_requests():
        return await asyncio.gather(*(committer.settle(Settlement(key.id, ["d", "e"], "label", "[]"))
                                      for _ in range(6)))

    decisions = asyncio.run(six_requests())
    assert [d.queries_left for d in decisions[:3]] == [5, 3, 1]
    assert [d.decision for d in decisions[3:]] == ["rejected:budget"] * 3
    assert statements.count("COMMIT") == 1 + 1  # the key's creation, then the whole group


def test_a_failed_group_fails_every_request_and_commits_none(tmp_path):
    connection, _, committer = committer_for(tmp_path / "gateway.db")
    key, _ = create_key(connection, budget=7)

    async def with_an_unknown_key():
        return await asyncio.gather(committer.settle(Settlement(key.id, ["d"], "label", "[]")),
                                    committer.settle(Settlement("000000000000", ["d"], "label", "[]")),
                                    return_exceptions=True)

    outcomes = asyncio.run(with_an_unknown_key())
    assert all(isinstance(outcome, MiriskError) for outcome in outcomes)
    assert connection.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 0


@pytest.mark.parametrize("commits", [3, 12])
def test_the_wal_is_checkpointed_off_the_request_path(tmp_path, commits):
    path = tmp_path / "gateway.db"
    connection = connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the schema into the file
    connection.execute("PRAGMA wal_autocheckpoint=0")
    checkpointer = BackgroundCheckpointer(path, every_commits=5)
    for i in range(commits):
        connection.execute("INSERT INTO alerts (time, key_id, reason, action) VALUES (?, 'k', 'r', 'alert')", (i,))
        checkpointer.committed()
        checkpointer.wait()
    in_the_file = sqlite3.connect(f"file:{path}?immutable=1", uri=True)  # the database file alone, not the WAL
    assert in_the_file.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == (10 if commits == 12 else 0)
    assert connection.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == commits
