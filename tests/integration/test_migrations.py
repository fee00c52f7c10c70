"""Migrations: applied once, in order, recorded with checksums; an edited file is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from service import migrate as migrations
from service.migrate import MigrationError, available, migrate, pending_migrations
from service.settings import Settings


def test_applying_twice_changes_nothing(settings: Settings) -> None:
    assert migrate(settings) == []
    assert pending_migrations(settings) == []


def test_a_fresh_sqlite_store_gets_every_migration_in_order(tmp_path: Path) -> None:
    s = Settings(database_url=f"sqlite:///{tmp_path / 'new.db'}")
    names = [m.name for m in available("sqlite")]
    assert names == sorted(names)
    assert [m.name for m in pending_migrations(s)] == names
    assert migrate(s) == names
    with sqlite3.connect(s.sqlite_path) as conn:
        recorded = conn.execute("SELECT name FROM kaoping_migrations ORDER BY name").fetchall()
    assert [r[0] for r in recorded] == names


def test_an_edited_applied_migration_is_refused(settings: Settings,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    original = migrations.available

    def edited(engine: str) -> list[migrations.Migration]:
        found = original(engine)
        first = found[0]
        return [migrations.Migration(first.name, first.sql + "\n-- edited\n"), *found[1:]]

    monkeypatch.setattr(migrations, "available", edited)
    with pytest.raises(MigrationError, match="edited after being applied"):
        migrate(settings)
    with pytest.raises(MigrationError, match="edited after being applied"):
        pending_migrations(settings)


def test_role_names_are_configurable_and_exist(pg_settings: Settings) -> None:
    assert pg_settings.migrate_database_url is not None
    with psycopg.connect(pg_settings.migrate_database_url) as conn:
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = "
                             "'kaoping_events'").fetchone()
        login = conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s",
                             (pg_settings.db_app_role,)).fetchone()
    assert owner == (pg_settings.db_owner_role,)
    assert login == (True,)
    with psycopg.connect(pg_settings.database_url) as conn:
        me = conn.execute("SELECT current_user").fetchone()
    assert me == (pg_settings.db_app_role,)
