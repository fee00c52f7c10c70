"""The event store on both engines: leaves in the same transaction, dense positions, stream
chains, and append-only guards that hold against the application role and the owner alike."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from domain.units import UnitKind, register_unit
from service.ledger.envelope import ZERO_HASH, Envelope, payload_hash
from service.migrate import migrate
from service.runtime import Services
from service.settings import Settings
from service.store import Leaf
from service.writes import is_version_conflict


def _register(services: Services, code: str) -> list[Leaf]:
    leaves: list[Leaf] = []
    unit = register_unit(code, f"Unit {code}", UnitKind.DEPARTMENT, "vertical", "test")
    services.store.save(unit, receipt=leaves)
    return leaves


def _raw_rows(services: Services) -> list[tuple[Any, ...]]:
    rid = "notification_id" if services.db.engine == "postgres" else "rowid"
    with services.db.read() as cur:
        cur.execute(f"SELECT l.position, e.originator_id, e.originator_version, e.topic, e.state, "
                    f"l.leaf_hash FROM kaoping_ledger l JOIN kaoping_events e "
                    f"ON e.{rid} = l.notification_id ORDER BY l.position")
        return cur.fetchall()


def test_every_event_gets_a_dense_position_and_a_chained_leaf(services: Services) -> None:
    first = _register(services, "A")
    unit = services.units.get(first[0].stream_id)
    unit.rename("Renamed", "typo", "test")
    unit2 = register_unit("B", "Unit B", UnitKind.TOWNSHIP, "platform-1", "test")
    batch: list[Leaf] = []
    services.store.save(unit, unit2, receipt=batch)

    assert [lf.position for lf in first + batch] == [0, 1, 2]
    rows = _raw_rows(services)
    assert [r[0] for r in rows] == [0, 1, 2]
    previous: dict[str, bytes] = {}
    for (position, sid, version, topic, state, digest), leaf in zip(rows, first + batch,
                                                                    strict=True):
        prev = previous.get(str(leaf.stream_id), ZERO_HASH) if version != 1 else ZERO_HASH
        envelope = Envelope(int(position), leaf.stream_id, int(version), str(topic),
                            payload_hash(bytes(state)), prev)
        assert envelope.leaf_hash() == bytes(digest) == leaf.leaf_hash
        previous[str(leaf.stream_id)] = leaf.leaf_hash
        assert sid is not None


def test_a_failed_save_writes_neither_events_nor_leaves(services: Services) -> None:
    _register(services, "A")
    dup = register_unit("A", "again", UnitKind.DEPARTMENT, "vertical", "test")
    with pytest.raises(IntegrityError) as err:
        services.store.save(dup)
    assert is_version_conflict(err.value)
    assert [r[0] for r in _raw_rows(services)] == [0]
    assert _register(services, "C")[0].position == 1


def test_after_append_runs_in_the_same_transaction(services: Services) -> None:
    def explode(_cur: object, _leaves: list[Leaf]) -> None:
        msg = "boom"
        raise RuntimeError(msg)

    unit = register_unit("Z", "z", UnitKind.DEPARTMENT, "vertical", "test")
    with pytest.raises(RuntimeError, match="boom"):
        services.store.save(unit, after_append=explode)
    assert _raw_rows(services) == []


def test_concurrent_writers_never_interleave_positions(pg_services: Services) -> None:
    # SQLite has one writer by construction; interleaving is PostgreSQL's to rule out.
    services = pg_services
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(25):
                _register(services, f"W{n}-{i}")
        except BaseException as exc:  # noqa: BLE001 -- collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = _raw_rows(services)
    assert [r[0] for r in rows] == list(range(150))
    with services.db.read() as cur:
        cur.execute("SELECT count(*), count(DISTINCT notification_id) FROM kaoping_ledger")
        assert cur.fetchone() == (150, 150)


# --- append-only guards -------------------------------------------------------------------

MUTATIONS = [
    "UPDATE kaoping_events SET topic = 'x'",
    "DELETE FROM kaoping_events",
    "UPDATE kaoping_ledger SET leaf_hash = leaf_hash",
    "DELETE FROM kaoping_ledger",
]


def _sqlite_try(settings: Settings, statement: str) -> str:
    conn = sqlite3.connect(settings.sqlite_path)
    try:
        conn.execute(statement)
        conn.commit()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        conn.close()
    return "accepted"


def _pg_try(dsn: str, statement: str) -> str:
    with psycopg.connect(dsn) as conn:
        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            return str(exc)
    return "accepted"


@pytest.mark.parametrize("statement", MUTATIONS)
def test_sqlite_triggers_refuse_changes(tmp_path: Path, statement: str) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'k.db'}",
                        token_key_path=str(tmp_path / "t.key"))
    migrate(settings)
    services = Services(settings)
    try:
        _register(services, "A")
        assert "append-only" in _sqlite_try(settings, statement)
        assert len(_raw_rows(services)) == 1
    finally:
        services.close()


PG_MUTATIONS = [*MUTATIONS, "TRUNCATE kaoping_events", "TRUNCATE kaoping_ledger"]


@pytest.mark.parametrize("statement", PG_MUTATIONS)
def test_the_application_role_cannot_change_the_log(pg_services: Services,
                                                    pg_settings: Settings,
                                                    statement: str) -> None:
    _register(pg_services, "A")
    outcome = _pg_try(pg_settings.database_url, statement)
    assert "permission denied" in outcome or "append-only" in outcome
    assert len(_raw_rows(pg_services)) == 1


@pytest.mark.parametrize("statement", PG_MUTATIONS)
def test_the_owner_is_stopped_by_the_triggers(pg_services: Services, pg_settings: Settings,
                                              statement: str) -> None:
    _register(pg_services, "A")
    assert pg_settings.migrate_database_url is not None
    with psycopg.connect(pg_settings.migrate_database_url) as conn:
        conn.execute(f'SET ROLE "{pg_settings.db_owner_role}"')
        try:
            conn.execute(statement)
            outcome = "accepted"
        except psycopg.Error as exc:
            outcome = str(exc)
    assert "append-only" in outcome
    assert len(_raw_rows(pg_services)) == 1


def test_the_application_role_holds_no_more_than_it_needs(pg_settings: Settings) -> None:
    with psycopg.connect(pg_settings.database_url) as conn:
        rows = conn.execute(
            "SELECT table_name, string_agg(privilege_type, ',' ORDER BY privilege_type) "
            "FROM information_schema.role_table_grants WHERE grantee = current_user "
            "AND table_name IN ('kaoping_events', 'kaoping_ledger') GROUP BY table_name "
            "ORDER BY table_name").fetchall()
    assert rows == [("kaoping_events", "INSERT,SELECT,UPDATE"),
                    ("kaoping_ledger", "INSERT,SELECT")]
    outcome = _pg_try(pg_settings.database_url, "ALTER TABLE kaoping_events DISABLE TRIGGER ALL")
    assert "must be owner" in outcome


def test_webhook_subscriptions_are_deactivated_never_deleted(pg_settings: Settings) -> None:
    """Deleting a subscription is an UPDATE (its delivery log stays for audit), so the
    application role holds no DELETE or TRUNCATE on the webhook tables."""
    with psycopg.connect(pg_settings.database_url) as conn:
        rows = conn.execute(
            "SELECT table_name, string_agg(privilege_type, ',' ORDER BY privilege_type) "
            "FROM information_schema.role_table_grants WHERE grantee = current_user "
            "AND table_name LIKE 'kaoping_webhook_%%' GROUP BY table_name "
            "ORDER BY table_name").fetchall()
        # A subscription's owner, role, url and secret are fixed (migration 0014): UPDATE is
        # granted on its lifecycle columns only.
        updatable = conn.execute(
            "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM "
            "information_schema.column_privileges WHERE grantee = current_user AND "
            "table_name = 'kaoping_webhook_subscriptions' AND privilege_type = 'UPDATE'"
        ).fetchone()
    assert rows == [("kaoping_webhook_deliveries", "INSERT,SELECT,UPDATE"),
                    ("kaoping_webhook_subscriptions", "INSERT,SELECT")]
    assert updatable == ("active,after_position,change_fingerprint,change_key,deleted_at,"
                         "deleted_reason,paused,suspended_at,suspended_reason,version",)
    outcome = _pg_try(pg_settings.database_url, "DELETE FROM kaoping_webhook_subscriptions")
    assert "permission denied" in outcome
