"""The gateway's SQLite file: keys, the audit log, alerts and settings, in WAL mode.

Every budget decision and its log record are written in one ``BEGIN IMMEDIATE``
transaction, which SQLite serialises across threads and processes: concurrent requests can
never spend the same query twice, and a response is sent only after its record is
committed. The file is owner-only (the log holds model outputs about real people)."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from mirisk.artifacts import FILE_MODE
from mirisk.errors import MiriskError

LOG = logging.getLogger("mirisk.gateway")
SCHEMA_VERSION = 3
SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    policy TEXT,
    budget INTEGER,
    window_seconds INTEGER,
    total_budget INTEGER,
    rate_per_minute INTEGER,
    queries_used INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    revoked REAL,
    flagged REAL,
    flag_action TEXT
);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    key_id TEXT,
    decision TEXT NOT NULL,
    status INTEGER NOT NULL,
    n_inputs INTEGER NOT NULL,
    input_digests TEXT,
    policy TEXT,
    outputs TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS requests_by_key_time ON requests (key_id, time);
CREATE TABLE IF NOT EXISTS usage (
    key_id TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    queries INTEGER NOT NULL,
    PRIMARY KEY (key_id, bucket)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    key_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    action TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_refusals (
    minute INTEGER NOT NULL,
    client TEXT NOT NULL,
    key_id TEXT NOT NULL,
    decision TEXT NOT NULL,
    refusals INTEGER NOT NULL,
    PRIMARY KEY (minute, client, key_id, decision)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
# After a checkpoint lets the WAL start over, SQLite cuts the file back to this size: the
# WAL of a busy gateway stays bounded instead of keeping its largest size for good.
JOURNAL_SIZE_LIMIT = 64 * 2**20
# How long a request waits, off the event loop, for another process's write lock.
LOCK_WAIT_SECONDS = 5.0
# The input digest a database gets when it is made (0) or brought forward: schema 1 had
# no settings table, and its log holds SHA-256 digests, which it keeps; schema 2 has its
# digest recorded already (schema 3 added the counts of refused authentications).
INPUT_DIGEST_BY_VERSION = {0: "blake3", 1: "sha256", 2: "blake3"}


def connect(path: str | Path, create: bool = True, busy_timeout: float = 30.0) -> sqlite3.Connection:
    """Open (and with ``create``, make owner-only and initialise) the gateway database;
    its statements wait up to ``busy_timeout`` seconds for another connection's lock."""
    path = Path(path)
    if not path.exists():
        if not create:
            raise MiriskError(f"gateway database {path} does not exist; create a key first with `mirisk keys create`")
        if not path.parent.is_dir():
            raise MiriskError(f"folder {path.parent} for the gateway database does not exist")
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    elif not path.is_file():
        raise MiriskError(f"gateway database path {path} is not a file")
    connection = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=False)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed transaction survives the process being killed
        # (it is in the WAL file); only a power cut can lose the last ones.
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version not in (*INPUT_DIGEST_BY_VERSION, SCHEMA_VERSION):
            raise MiriskError(f"{path} has gateway schema {version}; this mirisk reads schemas 1 to {SCHEMA_VERSION}")
        if version in INPUT_DIGEST_BY_VERSION:  # a new database, or one to bring to this schema (nothing is lost)
            connection.executescript(
                f"BEGIN IMMEDIATE; {SCHEMA} INSERT OR IGNORE INTO settings VALUES ('input_digest', "
                f"'{INPUT_DIGEST_BY_VERSION[version]}'); PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
    except sqlite3.DatabaseError as error:
        connection.close()
        raise MiriskError(f"{path} is not a gateway database: {error}") from None
    connection.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
    return connection


def backup(path: str | Path, out: str | Path) -> Path:
    """A consistent copy of the live database at ``out`` (owner-only, never over an existing
    file), made with ``VACUUM INTO``: one read transaction, so it finishes while servers
    keep writing (SQLite's ``.backup`` restarts whenever a writer commits)."""
    path, out = Path(path), Path(out)
    if out.exists() or out.is_symlink():
        raise MiriskError(f"{out} already exists; name a new file for the backup")
    if not out.parent.is_dir():
        raise MiriskError(f"folder {out.parent} for the backup does not exist")
    temporary = out.with_name(f".{out.name}.{os.getpid()}.partial")
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))  # VACUUM INTO fills an empty file
    try:
        connection = connect(path, create=False)
        try:
            connection.execute("VACUUM INTO ?", (str(temporary),))
        finally:
            connection.close()
        descriptor = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.link(temporary, out)  # fails, rather than overwrites, if ``out`` appeared meanwhile
    except FileExistsError:
        raise MiriskError(f"{out} appeared while the backup was written; nothing was overwritten") from None
    finally:
        temporary.unlink(missing_ok=True)
    return out


def record_served_classes(connection: sqlite3.Connection, n_classes: int) -> None:
    """Note how many classes the model served from this database has, so that ``mirisk keys
    create`` can check a key's policy against it."""
    with immediate(connection):
        connection.execute("INSERT OR REPLACE INTO settings VALUES ('served_classes', ?)", (str(n_classes),))


def served_classes(connection: sqlite3.Connection) -> int | None:
    """The class count a server last recorded here (None: no server has run on it)."""
    row = connection.execute("SELECT value FROM settings WHERE name = 'served_classes'").fetchone()
    return None if row is None else int(row[0])


def input_digest(connection: sqlite3.Connection) -> str:
    """The digest the database's log uses for inputs (a key of ``inputs.DIGESTS``)."""
    return connection.execute("SELECT value FROM settings WHERE name = 'input_digest'").fetchone()[0]


@contextmanager
def immediate(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the database's write lock at its start."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


class BackgroundCheckpointer:
    """Copies the WAL back into the database file on a worker thread, so that no request
    waits for a checkpoint and its fsync (they stalled one request in ~250 by ~4 ms).

    Connections that use it turn SQLite's own checkpoints off (``wal_autocheckpoint=0``);
    :meth:`committed` starts a passive checkpoint every ``every_commits`` commits, never
    two at once. A failed checkpoint loses nothing (the WAL keeps every commit) and is
    logged; the next one retries."""

    def __init__(self, path: str | Path, every_commits: int = 250) -> None:
        self._path = Path(path)
        self._every = every_commits
        self._commits = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mirisk-checkpoint")
        self._running: Future[None] | None = None
        self._connection: sqlite3.Connection | None = None  # used only on the worker thread

    def committed(self) -> None:
        """Count a commit; start a checkpoint when enough are pending and none is running."""
        self._commits += 1
        if self._commits >= self._every and (self._running is None or self._running.done()):
            self._commits = 0
            self._running = self._executor.submit(self.checkpoint)

    def checkpoint(self) -> None:
        try:
            if self._connection is None:
                self._connection = sqlite3.connect(self._path, isolation_level=None, timeout=30.0)
                self._connection.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
            self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as error:
            LOG.error("checkpoint of %s failed (the WAL keeps every commit; retrying later): %s", self._path, error)

    def wait(self) -> None:
        """Block until the running checkpoint, if any, is done."""
        if self._running is not None:
            self._running.result()
