"""Requests that reach the ledger in the same turn of the event loop share one model call
and one commit."""

import asyncio
import sqlite3

import numpy as np
import pytest

from mirisk.errors import MiriskError
from mirisk.gateway.database import BackgroundCheckpointer, connect
from mirisk.gateway.group_commit import GroupCommitter, Pending, no_model
from mirisk.gateway.keys import create_key
from mirisk.gateway.ledger import Settlement

THROTTLE = 10**9


def committer_for(path, answer=no_model):
    connection = connect(path)
    statements: list[str] = []
    connection.set_trace_callback(statements.append)
    return connection, statements, GroupCommitter(lambda: connection, THROTTLE, BackgroundCheckpointer(path), answer)


def test_pending_requests_are_answered_in_one_call_and_committed_with_the_group(tmp_path):
    calls: list[list[str]] = []

    def answer(pending):
        calls.append([request.policy for request in pending])
        return [f"[{len(request.batch)}]" for request in pending]

    connection, statements, committer = committer_for(tmp_path / "gateway.db", answer)
    key, _ = create_key(connection, budget=4)

    async def group():
        answers = [committer.answer(Pending(key.id, ["d"] * n, policy, np.zeros((n, 2), np.float32)))
                   for n, policy in [(1, "label"), (2, "scores"), (3, "label")]]
        return await asyncio.gather(*answers, committer.settle(Settlement(key.id, ["e"], "label", "[9]")))

    (first, second, third, settled) = asyncio.run(group())
    assert calls == [["label", "scores", "label"]]  # one model call for the group's pending requests, in order
    assert [(d.decision, s.outputs) for d, s in (first, second, third)] == [
        ("answered", "[1]"), ("answered", "[2]"), ("rejected:budget", "[3]")]
    assert settled.queries_left == 0 and statements.count("COMMIT") == 1 + 1
    logged = connection.execute("SELECT outputs FROM requests ORDER BY id").fetchall()
    assert logged == [("[1]",), ("[2]",), (None,), ("[9]",)]  # a refused answer's outputs are not kept


def test_a_model_failure_fails_the_group_and_commits_nothing(tmp_path):
    def answer(pending):
        raise RuntimeError("the network failed")

    connection, _, committer = committer_for(tmp_path / "gateway.db", answer)
    key, _ = create_key(connection, budget=4)

    async def group():
        return await asyncio.gather(committer.answer(Pending(key.id, ["d"], "label", np.zeros((1, 2), np.float32))),
                                    committer.settle(Settlement(key.id, ["e"], "label", "[]")),
                                    return_exceptions=True)

    assert all(isinstance(outcome, RuntimeError) for outcome in asyncio.run(group()))
    assert connection.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 0


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
