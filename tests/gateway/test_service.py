"""The gateway's decisions without HTTP: what is decided from the headers before the body
is read, where large bodies are handled, and what a locked database gets."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from contextlib import closing

import numpy as np
import orjson
import pytest
import torch

from mirisk.errors import MiriskError
from mirisk.gateway import service
from mirisk.gateway.database import connect
from mirisk.gateway.keys import create_key, revoke_key
from mirisk.gateway.ledger import flag_key
from mirisk.gateway.service import Gateway, GatewaySettings, Incoming
from mirisk.models import TargetModel, build_model


@pytest.fixture()
def gateway(tmp_path) -> Gateway:
    torch.manual_seed(0)
    target = TargetModel(build_model("softmax", (1, 4, 4), 5), "softmax", (1, 4, 4), tuple("abcde"))
    return Gateway(target, tmp_path / "gateway.db", GatewaySettings(policy="scores", auth_failures_per_minute=3))


def new_key(gateway: Gateway, **rules) -> tuple[str, str]:
    with _connection(gateway) as connection:
        key, token = create_key(connection, **rules)
    return key.id, token


class _connection:
    def __init__(self, gateway: Gateway) -> None:
        self.connection = connect(gateway._database)

    def __enter__(self) -> sqlite3.Connection:
        return self.connection

    def __exit__(self, *_) -> None:
        self.connection.close()


def body(n: int = 1) -> bytes:
    return orjson.dumps({"inputs": np.random.default_rng(0).random((n, 16)).tolist()})


def incoming(token: str | None, content: bytes | None = None, client: str = "10.0.0.1") -> Incoming:
    async def read() -> bytes | None:
        if content is None:
            raise AssertionError("the body was read")
        return content
    return Incoming(token, client, read)


def ask(gateway: Gateway, *requests: Incoming):
    async def run():
        return [await gateway.predict(request) for request in requests]
    return asyncio.run(run())


def logged(gateway: Gateway) -> list[tuple]:
    with _connection(gateway) as connection:
        return connection.execute("SELECT key_id, decision, status FROM requests ORDER BY id").fetchall()


def test_the_key_and_its_standing_are_decided_before_the_body_is_read(gateway):
    revoked_id, revoked = new_key(gateway)
    blocked_id, blocked = new_key(gateway)
    spent_id, spent = new_key(gateway, budget=1)
    with _connection(gateway) as connection:
        revoke_key(connection, revoked_id)
        flag_key(connection, blocked_id, "probe", "block")
    (first,) = ask(gateway, incoming(spent, body(1)))
    replies = ask(gateway, incoming(None), incoming("mk_000000000000_" + "a" * 43), incoming(revoked),
                  incoming(blocked), incoming(spent))  # none of these bodies may be read
    assert first.status == 200 and [reply.status for reply in replies] == [401, 401, 401, 403, 429]
    assert [reply.body["reason"] for reply in replies] == ["auth", "auth", "revoked", "blocked", "budget"]
    assert logged(gateway)[-3:] == [(revoked_id, "rejected:revoked", 401), (blocked_id, "rejected:blocked", 403),
                                    (spent_id, "rejected:budget", 429)]


def test_a_bad_input_from_a_key_revoked_meanwhile_is_logged_as_revoked(gateway):
    key_id, token = new_key(gateway)
    (answered,) = ask(gateway, incoming(token, body(1)))  # the key is now cached as valid
    with _connection(gateway) as connection:
        revoke_key(connection, key_id)
    (refused,) = ask(gateway, incoming(token, b"{oops"))
    assert answered.status == 200 and (refused.status, refused.body["reason"]) == (401, "revoked")
    assert logged(gateway)[-1] == (key_id, "rejected:revoked", 401)


def test_a_locked_database_gets_a_503_with_retry_after_not_a_stall(gateway, monkeypatch, caplog):
    _, token = new_key(gateway)
    monkeypatch.setattr(gateway._committer, "lock_wait", 0.2)  # the worker's wait; the loop never waits
    holder = connect(gateway._database)
    holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    with caplog.at_level(logging.ERROR, logger="mirisk.gateway"):
        (busy,) = ask(gateway, incoming(token, body(1)))
    holder.execute("ROLLBACK")
    (after,) = ask(gateway, incoming(token, body(1)))
    assert (busy.status, busy.body["reason"], busy.headers["Retry-After"]) == (503, "busy", "1")
    assert "stayed locked" in caplog.text
    assert after.status == 200 and [row[1] for row in logged(gateway)] == ["answered"]  # the 503 wrote nothing


def test_requests_behind_a_held_lock_wait_together_not_one_lock_wait_each(gateway, monkeypatch, caplog):
    """Eight requests in eight groups behind another process's write lock: each group's retry
    waits only until its own deadline, set when it was first refused, so the groups queued
    behind the first are refused at their turn without a wait of their own."""
    tokens = [new_key(gateway)[1] for _ in range(8)]
    monkeypatch.setattr(gateway._committer, "lock_wait", 0.5)
    holder = connect(gateway._database)
    holder.execute("BEGIN IMMEDIATE")

    async def staggered():
        async def one(index: int, token: str):
            await asyncio.sleep(0.01 * index)  # a group of its own
            return await gateway.predict(incoming(token, body(1)))
        return await asyncio.gather(*(one(index, token) for index, token in enumerate(tokens)))

    granted: list[int] = []  # the lock wait (ms) each retried group was given
    settle = gateway._committer._settle

    def recorded(items):
        granted.append(gateway.connection().execute("PRAGMA busy_timeout").fetchone()[0])
        return settle(items)

    monkeypatch.setattr(gateway._committer, "_settle", recorded)
    with caplog.at_level(logging.ERROR, logger="mirisk.gateway"):
        replies = asyncio.run(staggered())
    holder.execute("ROLLBACK")
    assert [reply.status for reply in replies] == [503] * 8 and caplog.text.count("stayed locked") == 8
    assert sum(granted) < 2 * 500  # about one wait in all; one each would be 8 x 500 ms


def test_a_large_body_from_a_key_revoked_meanwhile_is_refused_before_it_is_parsed(gateway, monkeypatch):
    key_id, token = new_key(gateway)
    ask(gateway, incoming(token, body(1)))  # cached as valid, with queries left: not checked again for small bodies
    with _connection(gateway) as connection:
        revoke_key(connection, key_id)
    monkeypatch.setattr(service, "parse_inputs", lambda *_: pytest.fail("the body was parsed"))
    (refused,) = ask(gateway, incoming(token, b"[" * (service.RECHECK_BODY_BYTES + 1)))
    assert (refused.status, refused.body["reason"]) == (401, "revoked")


def test_failed_authentications_are_limited_per_address_and_per_key_and_valid_keys_keep_working(gateway):
    key_id, token = new_key(gateway)
    bad = "mk_000000000000_" + "b" * 43
    wrong_secret = f"mk_{key_id}_" + "c" * 43
    replies = ask(gateway, *(incoming(bad) for _ in range(4)), incoming(token, body(1)))
    assert [reply.status for reply in replies] == [401, 401, 401, 429, 200]  # the limit is 3 a minute
    assert replies[3].body["reason"] == "auth-rate" and 1 <= int(replies[3].headers["Retry-After"]) <= 60
    # a wrong secret for a stored key counts against that key id, not the (already limited) address
    guesses = ask(gateway, *(incoming(wrong_secret, client="10.0.0.9") for _ in range(4)),
                  incoming(bad, client="10.0.0.9"), incoming(token, body(1), client="10.0.0.9"))
    assert [reply.status for reply in guesses] == [401, 401, 401, 429, 401, 200]


def test_refused_authentications_are_counted_per_client_and_minute_not_logged_one_by_one(gateway):
    async def together():
        return await asyncio.gather(*(gateway.predict(incoming(None, client=f"10.0.1.{i % 4}")) for i in range(20)))

    replies = asyncio.run(together())
    assert sorted(reply.status for reply in replies) == [401] * 12 + [429] * 8  # 3 a minute per client
    assert logged(gateway) == [] and gateway.refused_authentications.held == 20
    gateway.close()  # the server stopping writes what it holds
    with _connection(gateway) as connection:
        rows = connection.execute("SELECT client, key_id, decision, refusals FROM auth_refusals "
                                  "ORDER BY client, decision").fetchall()
    assert rows == [row for i in range(4) for row in ((f"10.0.1.{i}", "", "rejected:auth", 3),
                                                      (f"10.0.1.{i}", "", "rejected:auth-rate", 2))]
    assert gateway.refused_authentications.held == 0


def test_refusals_of_keys_are_committed_in_groups_and_counted_for_checkpoints(gateway):
    key_id, token = new_key(gateway)
    with _connection(gateway) as connection:
        revoke_key(connection, key_id)
    counted: list[int] = []
    gateway._committer._checkpointer.committed = lambda: counted.append(1)  # type: ignore[method-assign]

    async def together():
        return await asyncio.gather(*(gateway.predict(incoming(token)) for _ in range(20)))

    replies = asyncio.run(together())
    assert all(reply.status == 401 for reply in replies) and len(logged(gateway)) == 20
    assert 1 <= len(counted) < 20  # one commit (and one count) per group, not one per refusal


def test_a_key_whose_policy_does_not_fit_is_refused_when_it_asks_and_never_stops_the_server(tmp_path):
    database = tmp_path / "gateway.db"
    with closing(connect(database)) as connection:
        unfit_id, unfit = create_key(connection, policy="topk:10")[0].id, create_key(connection, policy="topk:10")[1]
        _, fitting = create_key(connection, policy="topk:2")
    torch.manual_seed(0)
    target = TargetModel(build_model("softmax", (1, 4, 4), 5), "softmax", (1, 4, 4), tuple("abcde"))
    gateway = Gateway(target, database, GatewaySettings(policy="scores"))  # starts, though one key cannot be served
    refused, answered = ask(gateway, incoming(unfit), incoming(fitting, body(1)))
    assert (refused.status, refused.body["reason"]) == (403, "policy") and "topk:10" in refused.body["error"]
    assert answered.status == 200
    with closing(connect(database)) as connection, pytest.raises(MiriskError, match="on a model of 5 classes"):
        create_key(connection, policy="topk:5")  # a server has recorded the model it serves
    assert unfit_id


def test_thirty_thousand_bad_keys_barely_grow_the_database_and_a_valid_key_keeps_working(gateway):
    _, token = new_key(gateway)
    ask(gateway, incoming(token, body(1)))
    files = [gateway._database, gateway._database.with_name(gateway._database.name + "-wal")]
    before = sum(path.stat().st_size for path in files if path.exists())
    bad = "mk_000000000000_" + "d" * 43

    async def flood():
        statuses = []
        for round_ in range(30):
            replies = await asyncio.gather(*(gateway.predict(incoming(bad)) for _ in range(1000)))
            statuses.append((await gateway.predict(incoming(token, body(1)))).status)
            assert {reply.status for reply in replies} <= {401, 429}
        return statuses

    during = asyncio.run(flood())
    gateway.close()
    grown = sum(path.stat().st_size for path in files if path.exists()) - before
    assert during == [200] * 30 and grown < 8 * 2**20
    (after,) = ask(gateway, incoming(token, body(1)))
    assert after.status == 200
    with _connection(gateway) as connection:
        assert connection.execute("SELECT SUM(refusals) FROM auth_refusals").fetchone()[0] == 30_000


def test_a_failed_authentication_limit_below_one_is_refused():
    with pytest.raises(MiriskError, match="failed-authentication limit must be at least 1"):
        GatewaySettings(auth_failures_per_minute=0)


def test_concurrent_requests_share_one_forward_pass_and_each_gets_its_own_answer(gateway):
    _, token = new_key(gateway)
    passes: list[int] = []
    gateway.model._network.register_forward_hook(lambda module, inputs, output: passes.append(len(inputs[0])))
    inputs = [np.random.default_rng(seed).random((n, 16)).tolist() for seed, n in enumerate((1, 2, 1))]

    async def together():
        return await asyncio.gather(*(gateway.predict(incoming(token, orjson.dumps({"inputs": rows})))
                                      for rows in inputs))

    replies = asyncio.run(together())
    assert passes == [4] and [reply.status for reply in replies] == [200, 200, 200]
    for reply, rows in zip(replies, inputs, strict=True):
        alone = gateway.model.answer(np.asarray(rows, np.float32).reshape(-1, 1, 4, 4), "scores")
        np.testing.assert_allclose(orjson.loads(orjson.dumps(reply.body["outputs"])), alone, atol=1e-5)
