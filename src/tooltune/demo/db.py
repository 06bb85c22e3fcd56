"""SQLite state shared by the demo services: open, seed once, and run short transactions.

Each service keeps one database file under the data dir. The SDK runs synchronous tools on
worker threads, and a ``sqlite3.Connection`` must not cross threads, so ``Database`` opens a
fresh connection per transaction instead of sharing one. Opening a local SQLite file costs
well under a millisecond, and it means a second process on the same file (an HTTP server next
to a stdio one) sees every committed write.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path

from tooltune.errors import ConfigError

# The demo world's clock is frozen so that seeded data, generated examples and eval runs are
# reproducible: "today" is always Monday 2 June 2025 and every new record is stamped with it.
DEMO_NOW = datetime(2025, 6, 2, 9, 0, tzinfo=timezone.utc)

# Bump when a service's tables change; an older file is then refused with a hint to reset.
SCHEMA_VERSION = 1

_META_TABLE = "CREATE TABLE IF NOT EXISTS demo_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


def now_iso() -> str:
    """The demo clock as an ISO 8601 UTC timestamp (``2025-06-02T09:00:00Z``)."""
    return iso(DEMO_NOW)


def iso(moment: datetime) -> str:
    """Format an aware datetime as ISO 8601 in UTC with a ``Z`` suffix."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Database:
    """One service's SQLite file. Use ``read()`` or ``write()`` around each tool call."""

    def __init__(self, path: Path):
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN ourselves, so a write transaction can take the
        # write lock up front (BEGIN IMMEDIATE) and its read-check-update cannot race.
        conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection for queries only; it is closed afterwards."""
        with closing(self._connect()) as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed if the block succeeds, rolled back if it raises."""
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")


def open_database(
    path: Path,
    service: str,
    schema: str,
    seed: Callable[[sqlite3.Connection], None],
    *,
    reset: bool = False,
) -> Database:
    """Open ``path``, creating the tables and seeding fixture data only if it is new.

    Seeding runs once per file, in the same transaction that records it, so two processes
    starting together cannot seed twice. ``reset=True`` deletes the file first, which restores
    the seeded state.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if reset:
        for leftover in (path, path.with_name(path.name + "-journal"), path.with_name(path.name + "-wal")):
            leftover.unlink(missing_ok=True)
    db = Database(path)
    try:
        _init(db, service, schema, seed)
    except sqlite3.DatabaseError as e:
        raise ConfigError(f"{path}: cannot open the demo database ({e}). Delete the file or use reset=True.") from e
    return db


def _init(db: Database, service: str, schema: str, seed: Callable[[sqlite3.Connection], None]) -> None:
    with db.write() as conn:
        conn.execute(_META_TABLE)
        row = conn.execute("SELECT value FROM demo_meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            _run_script(conn, schema)
            seed(conn)
            conn.execute("INSERT INTO demo_meta VALUES ('schema_version', ?), ('service', ?)", (str(SCHEMA_VERSION), service))
        elif row["value"] != str(SCHEMA_VERSION):
            raise ConfigError(
                f"{db.path}: demo database has schema version {row['value']}, this tooltune expects "
                f"{SCHEMA_VERSION}. Delete the file or open it with reset=True to re-seed it."
            )


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT the open transaction first, so run the statements one by one
    # and keep table creation and seeding atomic.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)
