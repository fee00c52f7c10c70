"""Our own connections to the store, for everything the eventsourcing library does not write.

Projections, the idempotency store, principals and ledger reads all use this thin layer so
that one SQL text (``%s`` placeholders) runs on PostgreSQL and SQLite alike. Written by hand
because the library's datastores are private to its recorders and no small, well-kept library
offers one cursor interface over psycopg 3 and sqlite3 without an ORM.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol
from uuid import UUID

import psycopg
import psycopg_pool

if TYPE_CHECKING:
    from service.settings import Settings

Engine = Literal["postgres", "sqlite"]
Row = tuple[Any, ...]


class Cursor(Protocol):
    engine: Engine

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def insert_rows(self, table: str, columns: Sequence[str],
                    rows: Iterable[Sequence[Any]]) -> None: ...
    def fetchone(self) -> Row | None: ...
    def fetchall(self) -> list[Row]: ...
    @property
    def rowcount(self) -> int: ...


def _sqlite_param(value: Any) -> Any:
    return value.hex if isinstance(value, UUID) else value


def _sqlite_sql(sql: str) -> str:
    return sql.replace("%s", "?")


def db_time(engine: str, at: datetime) -> datetime | str:
    """A timestamp parameter: ``timestamptz`` on PostgreSQL, ISO 8601 text on SQLite."""
    return at.isoformat() if engine == "sqlite" else at


def as_uuid(value: UUID | str) -> UUID:
    """Stream ids come back as ``uuid`` from PostgreSQL and as hex text from SQLite."""
    return value if isinstance(value, UUID) else UUID(value)


class SQLiteCursor:
    """Adapts a sqlite3 cursor (library's or ours) to :class:`Cursor`."""

    engine: Engine = "sqlite"

    def __init__(self, raw: Any) -> None:
        # The library wraps sqlite3 cursors (without rowcount); take the cursor itself.
        self._raw = getattr(raw, "sqlite_cursor", raw)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._raw.execute(_sqlite_sql(sql), [_sqlite_param(p) for p in params])

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._raw.executemany(_sqlite_sql(sql), [[_sqlite_param(p) for p in r] for r in rows])

    def insert_rows(self, table: str, columns: Sequence[str],
                    rows: Iterable[Sequence[Any]]) -> None:
        """Bulk insert (table and column names come from code, never from input)."""
        marks = ", ".join(["%s"] * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
        self.executemany(sql, list(rows))

    def fetchone(self) -> Row | None:
        row = self._raw.fetchone()
        return None if row is None else tuple(row)

    def fetchall(self) -> list[Row]:
        return [tuple(r) for r in self._raw.fetchall()]

    @property
    def rowcount(self) -> int:
        return int(self._raw.rowcount)


_COPY_TYPES: dict[tuple[str, tuple[str, ...]], list[str] | None] = {}


class PostgresCursor:
    """Adapts a psycopg cursor (library's dict-row one or ours) to :class:`Cursor`."""

    engine: Engine = "postgres"

    def __init__(self, raw: psycopg.Cursor[Any]) -> None:
        self._raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._raw.execute(sql, list(params) or None)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._raw.executemany(sql, rows)

    def insert_rows(self, table: str, columns: Sequence[str],
                    rows: Iterable[Sequence[Any]]) -> None:
        """Bulk insert with COPY: several times the rate of a pipelined ``executemany`` for a
        rebuild's hundreds of thousands of rows (table and column names come from code).

        ``rows`` may be a generator: rows are sent as they come, so PostgreSQL inserts the
        first ones while the caller is still producing the rest.
        """
        it = iter(rows)
        first = next(it, None)
        if first is None:
            return
        types = self._column_types(table, columns)
        binary = " (FORMAT BINARY)" if types is not None else ""
        with self._raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN{binary}") as copy:
            if types is not None:
                copy.set_types(types)
            copy.write_row(first)
            for row in it:
                copy.write_row(row)

    def _column_types(self, table: str, columns: Sequence[str]) -> list[str] | None:
        """The columns' types for a binary COPY (rows are then sent without formatting them
        as text, about half the client's work per row), or None to COPY as text: a type
        psycopg does not know by name. Read once per table and columns; the rebuild check's
        temporary copies have the live tables' names and types."""
        key = (table, tuple(columns))
        if key not in _COPY_TYPES:
            self._raw.execute(
                "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a "
                "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
                (table,))
            named = {str(r[0]): str(r[1]) for r in (self._row(x) for x in self._raw.fetchall())}
            types = [named.get(c, "") for c in columns]
            known = all(t and psycopg.adapters.types.get(t) is not None for t in types)
            _COPY_TYPES[key] = types if known else None
        return _COPY_TYPES[key]

    def _row(self, row: Any) -> Row:
        return tuple(row.values()) if isinstance(row, dict) else tuple(row)

    def fetchone(self) -> Row | None:
        row = self._raw.fetchone()
        return None if row is None else self._row(row)

    def fetchall(self) -> list[Row]:
        return [self._row(r) for r in self._raw.fetchall()]

    @property
    def rowcount(self) -> int:
        return self._raw.rowcount


class Database(Protocol):
    engine: Engine

    def write(self) -> contextlib.AbstractContextManager[Cursor]: ...
    def read(self) -> contextlib.AbstractContextManager[Cursor]: ...
    def close(self) -> None: ...


class PostgresDatabase:
    engine: Engine = "postgres"

    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        self.where = url
        self.pool = psycopg_pool.ConnectionPool(
            url, min_size=1, max_size=pool_size, open=False, name="kaoping"
        )
        self.pool.open(wait=True, timeout=10)

    @contextlib.contextmanager
    def write(self) -> Iterator[Cursor]:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield PostgresCursor(cur)

    @contextlib.contextmanager
    def read(self) -> Iterator[Cursor]:
        with self.pool.connection() as conn, conn.cursor() as cur:
            try:
                yield PostgresCursor(cur)
            finally:
                conn.rollback()

    def close(self) -> None:
        self.pool.close()


class SQLiteDatabase:
    """One connection per thread; writers take the database lock up front (BEGIN IMMEDIATE)."""

    engine: Engine = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = self.where = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Cursor]:
        conn = self._conn()
        raw = conn.cursor()
        raw.execute("BEGIN IMMEDIATE")
        try:
            yield SQLiteCursor(raw)
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()
        finally:
            raw.close()

    @contextlib.contextmanager
    def read(self) -> Iterator[Cursor]:
        conn = self._conn()
        raw = conn.cursor()
        raw.execute("BEGIN")
        try:
            yield SQLiteCursor(raw)
        finally:
            conn.rollback()
            raw.close()

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


def open_database(settings: Settings) -> Database:
    if settings.engine == "sqlite":
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        return SQLiteDatabase(str(settings.sqlite_path))
    return PostgresDatabase(settings.database_url, pool_size=settings.db_pool_size)


def reopenable(db: Database) -> tuple[Engine, str] | None:
    """What another process opens ``db`` again from (``reopen_database``); None for a database
    that lives in one connection."""
    return (db.engine, db.where) if isinstance(db, PostgresDatabase | SQLiteDatabase) else None


def reopen_database(engine: Engine, where: str) -> Database:
    """The database another process opened (``reopenable``), with one connection."""
    return SQLiteDatabase(where) if engine == "sqlite" else PostgresDatabase(where, pool_size=1)


def events_row_id(engine: Engine) -> str:
    """The events table's notification id column: a real column on PostgreSQL, rowid on SQLite."""
    return "notification_id" if engine == "postgres" else "rowid"
