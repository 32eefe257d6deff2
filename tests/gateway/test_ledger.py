"""Budgets and rate limits are decided with the log record, atomically."""

import threading

import pytest

from mirisk.gateway import ledger
from mirisk.gateway.database import connect
from mirisk.gateway.keys import create_key, get_key
from mirisk.gateway.ledger import (
    Decision,
    Refusal,
    Settlement,
    flag_key,
    log_refusal,
    precheck,
    settle,
    settle_all,
)

THROTTLE = 10**9


@pytest.fixture()
def db_path(tmp_path):
    return tmp_path / "gateway.db"


def spend(connection, key_id, n=1):
    return settle(connection, key_id, [f"digest{i}" for i in range(n)], "label", "[]", THROTTLE)


def test_a_lifetime_budget_is_spent_whole_requests_at_a_time(db_path):
    connection = connect(db_path)
    key, _ = create_key(connection, budget=10)
    assert [spend(connection, key.id, 4).queries_left for _ in range(2)] == [6, 2]
    refused = spend(connection, key.id, 3)
    assert (refused.decision, refused.status, refused.queries_left) == ("rejected:budget", 429, 2)
    assert "needs 3 queries and the key has 2 left" in refused.detail
    assert precheck(connection, key.id, 3, THROTTLE).decision == "rejected:budget"
    assert precheck(connection, key.id, 2, THROTTLE) is None
    assert get_key(connection, key.id).queries_used == 8
    rows = connection.execute("SELECT decision, n_inputs, outputs IS NULL FROM requests ORDER BY id").fetchall()
    assert rows == [("answered", 4, 0), ("answered", 4, 0), ("rejected:budget", 3, 1)]


def test_a_group_is_decided_in_order_in_one_transaction(db_path):
    connection = connect(db_path)
    key, _ = create_key(connection, budget=5)
    statements: list[str] = []
    connection.set_trace_callback(statements.append)
    group = [Settlement(key.id, ["a", "b"], "label", "[]") for _ in range(3)]
    decisions = settle_all(connection, group, THROTTLE)
    assert [(d.decision, d.queries_left) for d in decisions] == [("answered", 3), ("answered", 1),
                                                                  ("rejected:budget", 1)]
    assert statements.count("BEGIN IMMEDIATE") == statements.count("COMMIT") == 1
    assert len({d.request_id for d in decisions}) == 3
    assert sum("FROM keys" in statement for statement in statements) == 1  # read once,
    assert sum(statement.startswith("UPDATE keys") for statement in statements) == 1  # written once
    assert get_key(connection, key.id).queries_used == 4


def test_a_group_keeps_each_keys_rules_apart(db_path, monkeypatch):
    connection = connect(db_path)
    limited, _ = create_key(connection, rate_per_minute=2)
    windowed, _ = create_key(connection, budget=3, window="1h", total_budget=100)
    monkeypatch.setattr(ledger.time, "time", lambda: 1_000_000.0)
    group = [Settlement(key_id, ["d"], "label", "[]") for key_id in [limited.id, windowed.id] * 4]
    decisions = [(d.decision, d.queries_left) for d in settle_all(connection, group, THROTTLE)]
    assert decisions[0::2] == [("answered", None), ("answered", None), ("rejected:rate", None),
                               ("rejected:rate", None)]
    assert decisions[1::2] == [("answered", 2), ("answered", 1), ("answered", 0), ("rejected:budget", 0)]
    assert spend(connection, windowed.id).decision == "rejected:budget"  # the window's bucket was written
    assert (get_key(connection, limited.id).queries_used, get_key(connection, windowed.id).queries_used) == (2, 3)


def test_a_windowed_budget_refills_and_a_total_cap_does_not(db_path, monkeypatch):
    connection = connect(db_path)
    key, _ = create_key(connection, budget=5, window="1h", total_budget=8)
    clock = [1_000_000.0]
    monkeypatch.setattr(ledger.time, "time", lambda: clock[0])
    assert spend(connection, key.id, 5).queries_left == 0
    assert spend(connection, key.id, 1).decision == "rejected:budget"
    clock[0] += 3661  # a window and one 1/60 of it later
    assert spend(connection, key.id, 3).queries_left == 0  # the window refilled; the cap of 8 is reached
    assert spend(connection, key.id, 1).decision == "rejected:budget"


@pytest.mark.parametrize(("window", "seconds"), [("90s", 90), ("30s", 30), ("7s", 7), ("25h", 90_000)])
def test_a_window_of_any_length_holds_its_queries_for_that_long_and_never_less(db_path, monkeypatch, window, seconds):
    connection = connect(db_path)
    key, _ = create_key(connection, budget=2, window=window)
    clock = [1_000_000.3]
    monkeypatch.setattr(ledger.time, "time", lambda: clock[0])
    assert spend(connection, key.id, 2).queries_left == 0
    for elapsed in (0.5, seconds * 0.7, seconds - 0.01, seconds):  # a 90 s window once gave it back after 61 s
        clock[0] = 1_000_000.3 + elapsed
        assert spend(connection, key.id).decision == "rejected:budget", elapsed
    clock[0] = 1_000_000.3 + seconds * (1 + 1 / ledger.WINDOW_BUCKETS) + 0.001
    assert spend(connection, key.id, 2).answered


def test_the_rate_limit_counts_answered_requests_per_minute(db_path, monkeypatch):
    connection = connect(db_path)
    key, _ = create_key(connection, rate_per_minute=2)
    clock = [0.0]
    monkeypatch.setattr(ledger.time, "time", lambda: clock[0])
    assert [spend(connection, key.id).decision for _ in range(3)] == ["answered", "answered", "rejected:rate"]
    assert spend(connection, key.id).retry_after == 60
    clock[0] += 61
    assert spend(connection, key.id).answered


def test_flagged_keys_are_blocked_or_throttled(db_path):
    connection = connect(db_path)
    blocked, _ = create_key(connection)
    throttled, _ = create_key(connection)
    flag_key(connection, blocked.id, "probe", "block")
    flag_key(connection, throttled.id, "probe", "throttle")
    assert spend(connection, blocked.id).decision == "rejected:blocked"
    decisions = [settle(connection, throttled.id, ["d"], "label", "[]", 2).decision for _ in range(3)]
    assert decisions == ["answered", "answered", "rejected:rate"]
    assert connection.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 2


def test_concurrent_spenders_never_overspend_by_one_query(db_path):
    setup = connect(db_path)
    key, _ = create_key(setup, budget=100)
    answered: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        connection = connect(db_path)
        while spend(connection, key.id, 3).answered:
            with lock:
                answered.append(3)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(answered) == get_key(setup, key.id).queries_used == 99
    logged = setup.execute("SELECT COALESCE(SUM(n_inputs), 0) FROM requests WHERE decision = 'answered'").fetchone()
    assert logged[0] == 99


def test_refusals_before_the_model_are_logged(db_path):
    connection = connect(db_path)
    logged = log_refusal(connection, Refusal(None, Decision("rejected:auth", 401, "invalid API key")))
    row = connection.execute("SELECT key_id, decision, status, detail FROM requests WHERE id = ?",
                             (logged.request_id,)).fetchone()
    assert row == (None, "rejected:auth", 401, "invalid API key")


def test_retry_after_says_when_a_refused_key_can_be_answered(db_path, monkeypatch):
    connection = connect(db_path)
    rated, _ = create_key(connection, rate_per_minute=2)
    windowed, _ = create_key(connection, budget=5, window="60s")
    lifetime, _ = create_key(connection, budget=2)
    clock = [1000.0]
    monkeypatch.setattr(ledger.time, "time", lambda: clock[0])
    spend(connection, rated.id)
    spend(connection, windowed.id, 3)
    clock[0] += 20
    spend(connection, rated.id)
    spend(connection, windowed.id, 2)
    clock[0] += 10
    assert spend(connection, rated.id).retry_after == 30  # the first answer leaves the minute at +60
    refused = spend(connection, windowed.id, 2)
    # The 3 queries of +0 sit in a 1-second bucket counted for 61 s: they leave at +61.
    assert (refused.decision, refused.retry_after, refused.limit, refused.reset) == ("rejected:budget", 31, 5, 31)
    assert spend(connection, windowed.id, 6).retry_after is None  # more than the whole budget: no wait helps
    spend(connection, lifetime.id, 2)
    assert spend(connection, lifetime.id).retry_after is None  # a lifetime budget never refills
    clock[0] += 31
    answered = spend(connection, windowed.id, 3)
    assert (answered.queries_left, answered.limit, answered.reset) == (0, 5, 20)  # the +20 bucket leaves at +81


def test_a_lifetime_cap_on_a_window_is_never_promised_back(db_path, monkeypatch):
    connection = connect(db_path)
    key, _ = create_key(connection, budget=4, window="60s", total_budget=5)
    clock = [1000.0]
    monkeypatch.setattr(ledger.time, "time", lambda: clock[0])
    spend(connection, key.id, 4)
    refused = spend(connection, key.id, 2)
    assert refused.decision == "rejected:budget" and refused.retry_after is None  # the cap leaves 1
    assert spend(connection, key.id, 1).retry_after is not None


def test_refusals_and_alerts_share_the_group_commit(db_path):
    connection = connect(db_path)
    key, _ = create_key(connection)
    statements: list[str] = []
    connection.set_trace_callback(statements.append)
    group = [Refusal(None, Decision("rejected:auth", 401, "invalid API key")),
             Settlement(key.id, ["d"], "label", "[]"),
             Settlement(key.id, ["e"], "label", "[]", alert=("probe", "block"))]
    decisions = settle_all(connection, group, THROTTLE)
    # The alert is recorded first: the key's block holds for the whole group.
    assert [d.decision for d in decisions] == ["rejected:auth", "rejected:blocked", "rejected:blocked"]
    assert statements.count("COMMIT") == 1
    assert connection.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 1
