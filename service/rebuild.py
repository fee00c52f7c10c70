"""``kaoping rebuild --check``: rebuild every read model from the log and compare with the live.

The rebuild runs on one dedicated connection into TEMPORARY copies of the read-model tables
(PostgreSQL searches ``pg_temp`` first, SQLite its ``temp`` schema), so the same projection
code writes them while the service keeps serving from the real ones. Each projection is
rebuilt up to the position its live copy has reached, read in the same snapshot as the live
rows; then both are compared row by row, by content digest, and any difference is reported by
table and key. Every check is recorded (append-only) with the checkpoint it was made at.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import psycopg

from projections.follower import Follower, Projection, stopped, tracked_position
from service.db import Cursor, Engine, PostgresCursor, SQLiteCursor, db_time

if TYPE_CHECKING:
    from service.runtime import Services

# Columns that record *when* a row was computed (the page a follower happened to read), not
# what it holds: they legitimately differ between two correct builds.
IGNORED = {"rm_results": {"position"}}


class TableReport(msgspec.Struct, kw_only=True):
    table: str
    live_rows: int
    rebuilt_rows: int
    live_digest: str
    rebuilt_digest: str
    differences: list[str]  # keys (first two columns) of rows that differ, up to 20


class CheckReport(msgspec.Struct, kw_only=True):
    ok: bool
    checkpoint_size: int
    positions: dict[str, int]  # projection -> position rebuilt to
    tables: list[TableReport]
    # Read models stopped on an event they cannot apply, live or in the rebuild: name -> why
    stopped: dict[str, str] = {}


class _OneConnection:
    """A Database over one connection, so temporary tables stay visible to every step."""

    def __init__(self, engine: Engine, conn: Any) -> None:
        self.engine, self.conn = engine, conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Cursor]:
        if self.engine == "postgres":
            with self.conn.transaction(), self.conn.cursor() as raw:
                yield PostgresCursor(raw)
            return
        raw = self.conn.cursor()
        raw.execute("BEGIN")
        try:
            yield SQLiteCursor(raw)
        except BaseException:
            self.conn.rollback()
            raise
        else:
            self.conn.commit()

    read = write

    def close(self) -> None:
        self.conn.close()


def _connect(services: Services) -> _OneConnection:
    settings = services.settings
    if settings.engine == "postgres":
        return _OneConnection("postgres", psycopg.connect(settings.database_url, autocommit=True))
    return _OneConnection("sqlite", sqlite3.connect(settings.sqlite_path, isolation_level=None,
                                                    timeout=30))


def _tables(projections: Sequence[Projection]) -> list[str]:
    return [t for p in projections for t in p.tables]


def _make_temp(db: _OneConnection, tables: list[str]) -> None:
    with db.write() as cur:
        for table in [*tables, "kaoping_projection_tracking"]:
            if db.engine == "postgres":
                cur.execute(f"CREATE TEMP TABLE {table} (LIKE public.{table} INCLUDING ALL)")
            else:
                cur.execute("SELECT sql FROM main.sqlite_master WHERE type = 'table' AND "
                            "name = %s", (table,))
                row = cur.fetchone()
                if row is None:
                    msg = f"no table {table}"
                    raise LookupError(msg)
                cur.execute(str(row[0]).replace("CREATE TABLE", "CREATE TEMP TABLE", 1))


def _rows(cur: Cursor, qualified: str, table: str) -> list[tuple[Any, ...]]:
    cur.execute(f"SELECT * FROM {qualified} LIMIT 0")  # noqa: S608 -- names from code
    raw = cur._raw  # type: ignore[attr-defined]
    names = [d[0] for d in raw.description]
    keep = [i for i, n in enumerate(names) if n not in IGNORED.get(table, set())]
    cur.execute(f"SELECT * FROM {qualified}")  # noqa: S608 -- names from code
    rows = [tuple(_canon(r[i]) for i in keep) for r in cur.fetchall()]
    return sorted(rows, key=repr)


def _canon(value: Any) -> Any:
    if isinstance(value, memoryview):
        return bytes(value)
    return str(value) if not isinstance(value, (int, bytes, type(None))) else value


def _digest(rows: list[tuple[Any, ...]]) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def _compare(table: str, live: list[tuple[Any, ...]],
             rebuilt: list[tuple[Any, ...]]) -> TableReport:
    a, b = set(live), set(rebuilt)
    keys = sorted({"|".join(str(v) for v in r[:2]) for r in a ^ b})
    return TableReport(table=table, live_rows=len(live), rebuilt_rows=len(rebuilt),
                       live_digest=_digest(live), rebuilt_digest=_digest(rebuilt),
                       differences=keys[:20])


def _rebuild(db: _OneConnection, services: Services,
             positions: dict[str, int]) -> dict[str, str]:
    """Rebuild into the temporary tables; a read model that stops on an event is left out
    (the others go on) and returned with why: name -> reason."""
    halted: dict[str, str] = {}
    while True:
        todo = [p for p in services.projections if p.name not in halted]
        follower = Follower(db, services.store.mapper, todo,
                            page_size=services.settings.projection_page_size,
                            read_ahead=False)  # one connection: its temp tables are its own
        try:
            follower.catch_up(stops=positions)
        except Exception:  # recorded in the temporary tracking row, reported below
            with db.read() as cur:
                now = stopped(cur)
            if not set(now) - set(halted):  # not a read model's stop: a real failure
                raise
            halted |= {n: f"rebuild: stopped after position {p}: {e}"
                       for n, (p, e) in now.items() if n not in halted}
            continue
        finally:
            follower.close()
        return halted


def check(services: Services) -> CheckReport:
    """Rebuild into temporary tables and compare; record the result."""
    cp = services.signer.sign(services.db, services.clock.now())
    db = _connect(services)
    live_prefix, temp_prefix = ("public.", "pg_temp.") if db.engine == "postgres" else (
        "main.", "temp.")
    try:
        tables = _tables(services.projections)
        with db.write() as cur:  # one snapshot of the live models and their positions
            if db.engine == "postgres":
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            positions = {p.name: tracked_position(cur, p.name) for p in services.projections}
            halted = {n: f"live: stopped after position {p}: {e}"
                      for n, (p, e) in stopped(cur).items()}
            live = {t: _rows(cur, live_prefix + t, t) for t in tables}
        _make_temp(db, tables)
        halted |= _rebuild(db, services, positions)
        with db.write() as cur:
            rebuilt = {t: _rows(cur, temp_prefix + t, t) for t in tables}
    finally:
        db.close()
    reports = [_compare(t, live[t], rebuilt[t]) for t in tables]
    report = CheckReport(ok=not halted and all(not r.differences for r in reports),
                         checkpoint_size=cp.size, positions=positions, tables=reports,
                         stopped=halted)
    with services.db.write() as cur:
        cur.execute("INSERT INTO kaoping_rebuild_checks (checked_at, checkpoint_size, "
                    "checkpoint, ok, report) VALUES (%s, %s, %s, %s, %s)",
                    (db_time(cur.engine, services.clock.now()), cp.size, cp.note, report.ok,
                     msgspec.json.encode(report)))
    return report


class LastCheck(msgspec.Struct, kw_only=True):
    checked_at: str
    checkpoint: str
    report: CheckReport


def last_check(services: Services) -> LastCheck | None:
    with services.db.read() as cur:
        cur.execute("SELECT checked_at, checkpoint, report FROM kaoping_rebuild_checks "
                    "ORDER BY id DESC LIMIT 1")
        row = cur.fetchone()
    if row is None:
        return None
    return LastCheck(checked_at=str(row[0]), checkpoint=bytes(row[1]).decode(),
                     report=msgspec.json.decode(bytes(row[2]), type=CheckReport))
