"""API keys: shown once, stored only hashed, checked exactly, revocable."""

import hashlib
import sqlite3

import pytest

from mirisk.errors import MiriskError
from mirisk.gateway.database import connect
from mirisk.gateway.keys import (KeyCache, authenticate, create_key, format_window, list_keys, parse_window,
                                 revoke_key)


@pytest.fixture()
def database(tmp_path):
    connection = connect(tmp_path / "gateway.db")
    yield connection
    connection.close()


def test_the_secret_is_stored_only_as_a_digest(database, tmp_path):
    key, token = create_key(database, label="clinic", policy="topk:3", budget=100)
    raw = (tmp_path / "gateway.db").read_bytes() + (tmp_path / "gateway.db-wal").read_bytes()
    secret = token.removeprefix(f"mk_{key.id}_")
    assert secret.encode() not in raw and token.encode() not in raw
    stored = database.execute("SELECT secret_hash FROM keys WHERE id = ?", (key.id,)).fetchone()[0]
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    assert (tmp_path / "gateway.db").stat().st_mode & 0o777 == 0o600
    assert key.policy == "topk:3" and key.budget == 100 and key.label == "clinic"


def test_authentication_accepts_only_the_exact_key(database):
    key, token = create_key(database)
    other, _ = create_key(database)
    assert authenticate(database, token) == (key.id, key)
    wrong_secret = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert authenticate(database, wrong_secret) == (key.id, None)
    assert authenticate(database, token.replace(key.id, other.id)) == (other.id, None)
    assert authenticate(database, "mk_000000000000_" + "x" * 43) == (None, None)
    assert authenticate(database, "not a key") == (None, None)


def test_the_cache_reads_a_key_once_and_only_after_its_secret_proved_right(database):
    key, token = create_key(database)
    statements: list[str] = []
    database.set_trace_callback(statements.append)
    cache = KeyCache()
    wrong_secret = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert cache.authenticate(database, wrong_secret) == (key.id, None)
    assert [cache.authenticate(database, token) for _ in range(3)] == [(key.id, key)] * 3
    assert cache.authenticate(database, wrong_secret) == (key.id, None)  # a cached key still checks the secret
    assert len(statements) == 2  # the wrong secret's read (not kept), then the right one's
    cache.forget(key.id)
    cache.authenticate(database, token)
    assert len(statements) == 3


def test_revoked_keys_are_kept_and_marked(database):
    key, token = create_key(database)
    revoke_key(database, key.id)
    assert authenticate(database, token)[1].revoked is not None
    assert [listed.id for listed in list_keys(database)] == [key.id]
    with pytest.raises(MiriskError, match="already revoked"):
        revoke_key(database, key.id)
    with pytest.raises(MiriskError, match="no key with id"):
        revoke_key(database, "abc")


@pytest.mark.parametrize(("options", "message"), [
    ({"policy": "top3"}, "unknown output policy"),
    ({"budget": 0}, "the budget must be at least 1, got 0"),
    ({"budget": 99999999999999999999}, "budget must be at most 9,223,372,036,854,775,807"),
    ({"window": "1d"}, "give a --budget too"),
    ({"budget": 5, "total_budget": 10}, "without --window"),
    ({"budget": 5, "window": "1 week"}, "window must be"),
    ({"rate_per_minute": -1}, "rate limit must be at least 1"),
])
def test_bad_key_rules_are_refused_in_one_line(database, options, message):
    with pytest.raises(MiriskError, match=message):
        create_key(database, **options)


def test_windows_and_database_files_are_checked(tmp_path):
    assert [parse_window(text) for text in ("90s", "15m", "12h", "1d")] == [90, 900, 43200, 86400]
    assert [format_window(seconds) for seconds in (90, 900, 5400, 86400)] == ["90s", "15m", "90m", "1d"]
    (tmp_path / "notes.txt").write_text("not a database" * 100)
    with pytest.raises(MiriskError, match="not a gateway database"):
        connect(tmp_path / "notes.txt")
    with pytest.raises(MiriskError, match="does not exist"):
        connect(tmp_path / "missing.db", create=False)
    assert isinstance(connect(tmp_path / "fresh.db"), sqlite3.Connection)
