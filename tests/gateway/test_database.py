"""The gateway database: created owner-only at the current schema, older schemas brought
forward in place, the log's input digest fixed per database, its WAL bounded, and backed up
while servers write."""

import sqlite3
import threading
from contextlib import closing

import pytest

from mirisk.errors import MiriskError
from mirisk.gateway.database import JOURNAL_SIZE_LIMIT, SCHEMA, SCHEMA_VERSION, backup, connect, input_digest
from mirisk.gateway.keys import create_key
from mirisk.gateway.ledger import settle


def test_a_new_database_logs_blake3_digests(tmp_path):
    connection = connect(tmp_path / "gateway.db")
    assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert input_digest(connection) == "blake3"
    assert (tmp_path / "gateway.db").stat().st_mode & 0o777 == 0o600


def test_a_schema_1_database_is_brought_forward_and_keeps_sha256(tmp_path):
    path = tmp_path / "gateway.db"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA.split("CREATE TABLE IF NOT EXISTS settings")[0] + "PRAGMA user_version=1;")
    old.execute("INSERT INTO requests (time, decision, status, n_inputs, input_digests) VALUES (1, 'answered', 200, 1,"
                " 'e3b0')")
    old.commit()
    old.close()
    connection = connect(path)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert input_digest(connection) == "sha256"  # one digest per log
    assert connection.execute("SELECT input_digests FROM requests").fetchall() == [("e3b0",)]
    assert input_digest(connect(path)) == "sha256"  # opening it again changes nothing


def test_a_schema_2_database_gains_the_refusal_counts_and_keeps_its_digest(tmp_path):
    path = tmp_path / "gateway.db"
    connect(path).close()
    old = sqlite3.connect(path)
    old.executescript("DROP TABLE auth_refusals; UPDATE settings SET value = 'sha256' WHERE name = 'input_digest';"
                      " PRAGMA user_version=2;")
    old.close()
    connection = connect(path)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert connection.execute("SELECT COUNT(*) FROM auth_refusals").fetchone()[0] == 0
    assert input_digest(connection) == "sha256"  # a schema-1 log brought to 2 keeps its digest through 3


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "gateway.db"
    future = sqlite3.connect(path)
    future.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    future.close()
    with pytest.raises(MiriskError, match=f"gateway schema {SCHEMA_VERSION + 1}"):
        connect(path)


def test_the_wal_is_cut_back_after_checkpoints(tmp_path):
    connection = connect(tmp_path / "gateway.db")
    assert connection.execute("PRAGMA journal_size_limit").fetchone()[0] == JOURNAL_SIZE_LIMIT


def test_a_backup_finishes_under_load_owner_only_and_never_over_a_file(tmp_path):
    path = tmp_path / "gateway.db"
    key, _ = create_key(connect(path), budget=10**9)
    stop = threading.Event()
    written = [0]

    enough = threading.Event()  # set once the writers have committed 50 answers

    def writer() -> None:
        connection = connect(path)
        while not stop.is_set():
            settle(connection, key.id, ["d"] * 4, "label", "[" + "0.5," * 200 + "0.5]", 10**9)
            written[0] += 1
            if written[0] >= 50:
                enough.set()

    writers = [threading.Thread(target=writer) for _ in range(2)]
    for thread in writers:
        thread.start()
    try:
        assert enough.wait(timeout=60), "the writers did not commit 50 answers within a minute"
        copy = backup(path, tmp_path / "copy.db")
        before_stop = written[0]
    finally:
        stop.set()
        for thread in writers:
            thread.join()
    assert copy.stat().st_mode & 0o777 == 0o600
    with closing(sqlite3.connect(copy)) as copied:
        assert copied.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert 50 <= copied.execute("SELECT COUNT(*) FROM requests").fetchone()[0] <= before_stop + 2
    with pytest.raises(MiriskError, match="already exists"):
        backup(path, copy)
    assert not list(tmp_path.glob(".copy.db.*"))  # no partial file left behind
