"""Apply the numbered SQL files in ``migrations/<engine>/`` in order, once each.

A hand-written runner (~100 lines) rather than yoyo or dbmate: it needs to create the owner and
application roles under configurable names, run each file as the owner role, and refuse a file
edited after it was applied (SHA-256 recorded per file) — none of which those tools do for us.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from service.db import Cursor
    from service.settings import Settings

# Any constant works; it only has to be the same for every runner of this project.
_ADVISORY_LOCK_KEY = 0x6B616F70696E67


class MigrationError(RuntimeError):
    """A migration cannot be applied, or an applied one was changed."""


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available(engine: str) -> list[Migration]:
    folder = resources.files("migrations") / engine
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(f.name, f.read_text(encoding="utf-8")) for f in files]


def _check_applied(applied: dict[str, str], migrations: list[Migration]) -> list[Migration]:
    names = {m.name for m in migrations}
    unknown = sorted(set(applied) - names)
    if unknown:
        msg = f"the database has migrations this code does not know: {', '.join(unknown)}"
        raise MigrationError(msg)
    pending = []
    for m in migrations:
        if m.name not in applied:
            pending.append(m)
        elif applied[m.name] != m.sha256:
            msg = f"{m.name} was edited after being applied (sha256 mismatch); add a new migration"
            raise MigrationError(msg)
    return pending


def pending_migrations(settings: Settings) -> list[Migration]:
    """Migrations not yet applied (raises if an applied one changed); used by /ready."""
    migrations = available(settings.engine)
    if settings.engine == "sqlite":
        with sqlite3.connect(settings.sqlite_path) as conn:
            applied = _sqlite_applied(conn)
        conn.close()
    else:
        with psycopg.connect(settings.database_url) as pg:
            applied = _pg_applied(pg)
    return _check_applied(applied, migrations)


def pending_in(cur: Cursor) -> list[Migration]:
    """As ``pending_migrations``, on a connection the caller already holds (the pool's): a
    readiness probe must not open a connection of its own each time it is asked."""
    if cur.engine == "sqlite":
        cur.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                    "name = 'kaoping_migrations'")
    else:
        cur.execute("SELECT count(*) FROM pg_class WHERE oid = to_regclass('kaoping_migrations')")
    row = cur.fetchone()
    applied: dict[str, str] = {}
    if row and row[0]:
        cur.execute("SELECT name, sha256 FROM kaoping_migrations")
        applied = {str(n): str(h) for n, h in cur.fetchall()}
    return _check_applied(applied, available(cur.engine))


def migrate(settings: Settings) -> list[str]:
    """Apply pending migrations; return the names applied. Safe to run concurrently."""
    if settings.engine == "sqlite":
        return _migrate_sqlite(settings)
    return _migrate_postgres(settings)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _sqlite_applied(conn: sqlite3.Connection) -> dict[str, str]:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='kaoping_migrations'"
    ).fetchone()
    if not exists:
        return {}
    return dict(conn.execute("SELECT name, sha256 FROM kaoping_migrations").fetchall())


def _statements(script: str) -> list[str]:
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()
    ):
        msg = f"incomplete SQL statement at end of migration: {buf.strip()[:80]}"
        raise MigrationError(msg)
    return out


def _migrate_sqlite(settings: Settings) -> list[str]:
    settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(settings.sqlite_path, isolation_level=None, timeout=30)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS kaoping_migrations "
            "(name TEXT PRIMARY KEY, sha256 TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        done = []
        for m in _check_applied(_sqlite_applied(conn), available("sqlite")):
            for statement in _statements(m.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO kaoping_migrations VALUES (?, ?, ?)", (m.name, m.sha256, _now())
            )
            done.append(m.name)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    return done


def _pg_applied(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, str]:
    row = conn.execute("SELECT to_regclass('kaoping_migrations') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return {}
    return {str(n): str(h) for n, h in conn.execute("SELECT name, sha256 FROM kaoping_migrations")}


def _ensure_roles(conn: psycopg.Connection[tuple[object, ...]], settings: Settings) -> None:
    owner, app = settings.db_owner_role, settings.db_app_role
    for role, login in ((owner, False), (app, True)):
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if not exists:
            conn.execute(
                sql.SQL("CREATE ROLE {} {}").format(
                    sql.Identifier(role), sql.SQL("LOGIN" if login else "NOLOGIN")
                )
            )
    if settings.db_app_password:
        conn.execute(sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
            sql.Identifier(app), sql.Literal(settings.db_app_password)))
    me = conn.execute("SELECT current_user").fetchone()
    if me and me[0] != owner:
        conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(owner)))
    dbname = conn.info.dbname
    conn.execute(
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(dbname), sql.Identifier(app)
        )
    )
    conn.execute(
        sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(sql.Identifier(owner))
    )
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(app)))


def _build_deferred_indexes(conn: psycopg.Connection[tuple[object, ...]],
                            settings: Settings) -> None:
    """Indexes a read model's load left dropped (projections/bulk.py) are built before any
    migration, which might change or drop them, runs."""
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(settings.db_owner_role)))
        row = conn.execute("SELECT to_regclass('kaoping_deferred_indexes') IS NOT NULL").fetchone()
        if not row or not row[0]:
            return
        for (table,) in conn.execute(
                "SELECT DISTINCT table_name FROM kaoping_deferred_indexes").fetchall():
            conn.execute("SELECT kaoping_restore_indexes(%s)", (table,))


def _migrate_postgres(settings: Settings) -> list[str]:
    url = settings.migrate_database_url or settings.database_url
    done: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
        try:
            with conn.transaction():
                _ensure_roles(conn, settings)
                conn.execute(sql.SQL("SET LOCAL ROLE {}").format(
                    sql.Identifier(settings.db_owner_role)))
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS kaoping_migrations (name text PRIMARY KEY, "
                    "sha256 text NOT NULL, applied_at timestamptz NOT NULL)"
                )
                # The application role reads it to report readiness (/ready).
                conn.execute(sql.SQL("GRANT SELECT ON kaoping_migrations TO {}").format(
                    sql.Identifier(settings.db_app_role)))
            _build_deferred_indexes(conn, settings)
            for m in _check_applied(_pg_applied(conn), available("postgres")):
                with conn.transaction():
                    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(
                        sql.Identifier(settings.db_owner_role)))
                    conn.execute("SELECT set_config('kaoping.app_role', %s, true)",
                                 (settings.db_app_role,))
                    conn.execute(m.sql.encode())
                    conn.execute(
                        "INSERT INTO kaoping_migrations VALUES (%s, %s, now())",
                        (m.name, m.sha256),
                    )
                done.append(m.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_LOCK_KEY,))
    return done
