"""The gateway database: created owner-only at the current schema, older schemas brought
forward in place, the log's input digest fixed per database."""

import sqlite3

import pytest

from mirisk.errors import MiriskError
from mirisk.gateway.database import SCHEMA, SCHEMA_VERSION, connect, input_digest


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


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "gateway.db"
    future = sqlite3.connect(path)
    future.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    future.close()
    with pytest.raises(MiriskError, match=f"gateway schema {SCHEMA_VERSION + 1}"):
        connect(path)
