"""The ledger on both stores: proofs that verify against signed checkpoints, a signer that
refuses a restored or rewritten store, and tamper drills that verify-log catches by position."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg import sql

from domain.units import UnitKind, register_unit
from service.clock import FixedClock
from service.db import as_uuid
from service.ledger import merkle
from service.ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from service.ledger.guard import LedgerHalted
from service.ledger.signer import SignerRefused
from service.ledger.tree import extend_nodes
from service.ledger.verify_log import verify_log
from service.runtime import Services
from service.settings import Settings
from tests.conftest import ADMIN_DSN


def _add(services: Services, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        unit = register_unit(f"U{i:03d}", f"Unit {i}", UnitKind.DEPARTMENT, "vertical", "t")
        services.store.save(unit)
        if i % 4 == 0:
            unit.rename(f"Renamed {i}", "why", "t")
            services.store.save(unit)


def _open(services: Services, note: bytes) -> Checkpoint:
    return open_checkpoint(note, [services.signer.vkey], origin=services.settings.ledger_origin)


def test_every_proof_verifies_against_signed_checkpoints(services: Services) -> None:
    _add(services, 9)
    old = _open(services, services.signer.sign(services.db, services.clock.now()).note)
    _add(services, 14, start=9)
    new = _open(services, services.signer.sign(services.db, services.clock.now()).note)
    assert (old.size, new.size) == (12, 29)  # renames at every 4th unit
    with services.db.read() as cur:
        cur.execute("SELECT leaf_hash FROM kaoping_ledger ORDER BY position")
        leaves = [bytes(h) for (h,) in cur.fetchall()]
    assert merkle.root_of(leaves) == new.root
    assert merkle.root_of(leaves[:old.size]) == old.root
    for index in range(new.size):
        leaf, proof = services.ledger.inclusion(index, new.size)
        assert leaf == leaves[index]
        assert merkle.verify_inclusion(index, new.size, leaf, proof, new.root)
    for m in range(1, new.size + 1):
        proof = services.ledger.consistency(m, new.size)
        assert merkle.verify_consistency(m, new.size, merkle.root_of(leaves[:m]), new.root,
                                         proof)
    assert services.ledger.checkpoint(old.size).note == services.ledger.checkpoint(
        old.size).note
    report = verify_log(services.db, [services.signer.vkey], origin=old.origin)
    assert report.ok, report.failures
    assert (report.events, report.checkpoints, report.root) == (29, 2, new.root)


def test_signing_again_without_new_events_returns_the_same_checkpoint(
        services: Services) -> None:
    _add(services, 3)
    first = services.signer.sign(services.db, services.clock.now())
    again = services.signer.sign(services.db, services.clock.now())
    assert again == first
    with services.db.read() as cur:
        cur.execute("SELECT count(*) FROM kaoping_checkpoints")
        assert cur.fetchone() == (1,)


# --- the signer refuses forks ------------------------------------------------------------

@contextmanager
def _superuser(settings: Settings) -> Iterator[Any]:
    """A connection that bypasses the append-only guards, as a hostile administrator would."""
    if settings.engine == "sqlite":
        conn = sqlite3.connect(settings.sqlite_path, isolation_level=None)
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"
                                    ).fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        try:
            yield conn
        finally:
            conn.close()
    else:
        assert settings.migrate_database_url is not None
        with psycopg.connect(settings.migrate_database_url, autocommit=True) as pg:
            pg.execute("SET session_replication_role = replica")  # triggers off, superuser only
            yield pg


def _q(settings: Settings, text: str) -> str:
    return text.replace("%s", "?") if settings.engine == "sqlite" else text


def _rid(settings: Settings) -> str:
    return "rowid" if settings.engine == "sqlite" else "notification_id"


def _copy_store(settings: Settings, tmp_path: Path) -> Settings:
    """A backup of the store as it is now (the services using it must be closed)."""
    if settings.engine == "sqlite":
        target = tmp_path / f"backup-{secrets.token_hex(3)}.db"
        with sqlite3.connect(settings.sqlite_path) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        src.close()
        dst.close()
        return msgspec.structs.replace(settings, database_url=f"sqlite:///{target}")
    dbname = settings.database_url.rsplit("/", 1)[1]
    copy = f"{dbname}_bk{secrets.token_hex(2)}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(copy), sql.Identifier(dbname)))
        admin.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(copy), sql.Identifier(settings.db_app_role)))
    assert settings.migrate_database_url is not None
    return msgspec.structs.replace(
        settings, database_url=settings.database_url.rsplit("/", 1)[0] + "/" + copy,
        migrate_database_url=settings.migrate_database_url.rsplit("/", 1)[0] + "/" + copy)


def test_the_signer_refuses_a_store_restored_from_an_old_backup(
        settings: Settings, clock: FixedClock, tmp_path: Path) -> None:
    live = Services(settings, clock=clock)
    _add(live, 5)
    live.signer.sign(live.db, clock.now())
    live.close()
    backup = _copy_store(settings, tmp_path)
    live = Services(settings, clock=clock)
    _add(live, 5, start=5)
    signed = live.signer.sign(live.db, clock.now())
    live.close()

    restored = Services(backup, clock=clock)  # same signing key and state file
    try:
        # The restored store cannot move on with other events (the rollback guard) …
        with pytest.raises(LedgerHalted, match=r"positions 7\.\.12 were acknowledged"):
            _add(restored, 2, start=100)
        # … and nothing is signed over it.
        with pytest.raises(SignerRefused, match=f"already signed a tree of size {signed.size}"):
            restored.signer.sign(restored.db, clock.now())
    finally:
        restored.close()


def test_the_signer_refuses_a_rewritten_store(services: Services, settings: Settings) -> None:
    _add(services, 6)
    signed = services.signer.sign(services.db, services.clock.now())
    # A thorough attacker rewrites an event, recomputes its leaf and every node above it.
    with services.db.read() as cur:
        cur.execute("SELECT notification_id FROM kaoping_ledger WHERE position = 2")
        row = cur.fetchone()
    assert row is not None
    with _superuser(settings) as conn:
        conn.execute(_q(settings, f"UPDATE kaoping_events SET state = %s WHERE "
                                  f"{_rid(settings)} = %s"),
                     (b'{"forged":true}', row[0]))
        conn.execute(_q(settings, "UPDATE kaoping_ledger SET leaf_hash = %s WHERE position = 2"),
                     (merkle.node_hash(b"x", b"y"),))
        conn.execute("DELETE FROM kaoping_tree_nodes")
    with services.db.write() as cur:
        extend_nodes(cur, 0, signed.size)
    _add(services, 1, start=50)
    with pytest.raises(SignerRefused, match=f"root at size {signed.size}"):
        services.signer.sign(services.db, services.clock.now())


# --- tamper drills: verify-log finds each one and names it ------------------------------------

@pytest.fixture
def signed_log(services: Services) -> Services:
    _add(services, 12)  # 12 registrations + 3 renames = 15 events
    services.signer.sign(services.db, services.clock.now())
    _add(services, 2, start=20)  # 2 + 1 more after the checkpoint
    report = verify_log(services.db, [services.signer.vkey])
    assert report.ok, report.failures
    return services


def _nid(services: Services, position: int) -> int:
    with services.db.read() as cur:
        cur.execute("SELECT notification_id FROM kaoping_ledger WHERE position = %s",
                    (position,))
        row = cur.fetchone()
    assert row is not None
    return int(row[0])


def _first_failure(services: Services) -> str:
    report = verify_log(services.db, [services.signer.vkey],
                        origin=services.settings.ledger_origin)
    assert not report.ok
    return report.failures[0]


def test_drill_a_changed_payload(signed_log: Services, settings: Settings) -> None:
    nid = _nid(signed_log, 4)
    with _superuser(settings) as conn:
        state = conn.execute(_q(settings, f"SELECT state FROM kaoping_events WHERE "
                                          f"{_rid(settings)} = %s"), (nid,)).fetchone()[0]
        doc = json.loads(bytes(state))
        doc["name"] = "Inflated"
        conn.execute(_q(settings, f"UPDATE kaoping_events SET state = %s WHERE "
                                  f"{_rid(settings)} = %s"),
                     (json.dumps(doc).encode(), nid))
    assert _first_failure(signed_log).startswith("position 4: ")


def test_drill_changed_metadata(signed_log: Services, settings: Settings) -> None:
    nid = _nid(signed_log, 7)
    with _superuser(settings) as conn:
        conn.execute(_q(settings, f"UPDATE kaoping_events SET topic = %s WHERE "
                                  f"{_rid(settings)} = %s"),
                     ("kaoping/Unit.Renamed.v1", nid))
    assert _first_failure(signed_log).startswith("position 7: ")


def _stream_of(settings: Settings, conn: Any, nid: int) -> Any:
    return conn.execute(_q(settings, f"SELECT originator_id FROM kaoping_events WHERE "
                                     f"{_rid(settings)} = %s"), (nid,)).fetchone()[0]


def test_drill_an_event_moved_to_another_stream(signed_log: Services, settings: Settings) -> None:
    """An event re-filed under another aggregate (a sanction onto another cadre's file) with
    its payload untouched: the leaf commits to the stream, so the move is found and named."""
    moved, into = _nid(signed_log, 2), _nid(signed_log, 6)
    with _superuser(settings) as conn:
        other = _stream_of(settings, conn, into)
        conn.execute(_q(settings, f"UPDATE kaoping_events SET originator_id = %s, "
                                  f"originator_version = 7 WHERE {_rid(settings)} = %s"),
                     (other, moved))
    failure = _first_failure(signed_log)
    assert failure.startswith(f"position 2: its event row is stream {as_uuid(other)} version 7, "
                              "but its ledger row says stream ")
    assert "the event was moved to another stream or renumbered" in failure


def test_drill_a_renumbered_event(signed_log: Services, settings: Settings) -> None:
    """Version 2 of a stream renumbered 3 (the order of a file's events changed in place)."""
    with signed_log.db.read() as cur:
        cur.execute("SELECT position FROM kaoping_ledger WHERE stream_version = 2 "
                    "ORDER BY position LIMIT 1")
        row = cur.fetchone()
    assert row is not None
    position = int(row[0])
    with _superuser(settings) as conn:
        conn.execute(_q(settings, f"UPDATE kaoping_events SET originator_version = 3 WHERE "
                                  f"{_rid(settings)} = %s"), (_nid(signed_log, position),))
    failure = _first_failure(signed_log)
    assert failure.startswith(f"position {position}: its event row is stream ")
    assert " version 3, but its ledger row says stream " in failure
    assert " version 2: the event was moved to another stream or renumbered" in failure


def test_drill_a_relabelled_ledger_row(signed_log: Services, settings: Settings) -> None:
    """The ledger row of a stream's first event relabelled (another stream id, version 5), the
    event untouched: its leaf still matches (a first event's previous leaf is zeros), but the
    reads by stream follow the ledger's columns, so the relabelling is found and named."""
    with signed_log.db.read() as cur:
        cur.execute("SELECT l.position FROM kaoping_ledger l WHERE l.stream_version = 1 AND NOT "
                    "EXISTS (SELECT 1 FROM kaoping_ledger n WHERE n.stream_id = l.stream_id AND "
                    "n.stream_version = 2) ORDER BY l.position LIMIT 1")
        row = cur.fetchone()
    assert row is not None
    position = int(row[0])
    with _superuser(settings) as conn:
        other = _stream_of(settings, conn, _nid(signed_log, 0))
        conn.execute(_q(settings, "UPDATE kaoping_ledger SET stream_id = %s, stream_version = 5 "
                                  "WHERE position = %s"),
                     (other, position))
    failure = _first_failure(signed_log)
    assert failure.startswith(f"position {position}: its event row is stream ")
    assert f"but its ledger row says stream {as_uuid(other)} version 5" in failure


def test_drill_a_deleted_event(signed_log: Services, settings: Settings) -> None:
    nid = _nid(signed_log, 9)
    with _superuser(settings) as conn:
        conn.execute(_q(settings, f"DELETE FROM kaoping_events WHERE {_rid(settings)} = %s"),
                     (nid,))
    assert _first_failure(signed_log) == "position 9: its event row is missing (deleted)"


def test_drill_a_deleted_event_and_its_leaf(signed_log: Services, settings: Settings) -> None:
    nid = _nid(signed_log, 3)
    with _superuser(settings) as conn:
        conn.execute(_q(settings, f"DELETE FROM kaoping_events WHERE {_rid(settings)} = %s"),
                     (nid,))
        conn.execute("DELETE FROM kaoping_ledger WHERE position = 3")
    assert _first_failure(signed_log).startswith("positions 3..3 are missing")


def test_drill_swapped_events(signed_log: Services, settings: Settings) -> None:
    a, b = _nid(signed_log, 5), _nid(signed_log, 11)
    rid = _rid(settings)
    with _superuser(settings) as conn:
        conn.execute(_q(settings, f"UPDATE kaoping_events SET {rid} = -1 WHERE {rid} = %s"), (a,))
        conn.execute(_q(settings, f"UPDATE kaoping_events SET {rid} = %s WHERE {rid} = %s"),
                     (a, b))
        conn.execute(_q(settings, f"UPDATE kaoping_events SET {rid} = %s WHERE {rid} = -1"), (b,))
    assert _first_failure(signed_log).startswith("position 5: ")


def test_drill_events_removed_from_the_end(signed_log: Services, settings: Settings) -> None:
    with signed_log.db.read() as cur:
        cur.execute("SELECT max(size) FROM kaoping_checkpoints")
        row = cur.fetchone()
    assert row is not None
    size = int(row[0])
    with _superuser(settings) as conn:
        for position in range(size - 1, size + 3):
            nid = _nid(signed_log, position)
            conn.execute(_q(settings, f"DELETE FROM kaoping_events WHERE {_rid(settings)} = %s"),
                         (nid,))
            conn.execute(_q(settings, "DELETE FROM kaoping_ledger WHERE position = %s"),
                         (position,))
    assert _first_failure(signed_log) == (
        f"checkpoint at size {size} is beyond the log's {size - 1} leaves "
        "(events were removed from the end)")


def test_drill_a_forged_checkpoint(signed_log: Services, settings: Settings) -> None:
    with signed_log.db.read() as cur:
        cur.execute("SELECT leaf_hash FROM kaoping_ledger WHERE position < 16 ORDER BY position")
        leaves = [bytes(h) for (h,) in cur.fetchall()]
    forged = sign_checkpoint(Checkpoint(settings.ledger_origin, 16, merkle.root_of(leaves)),
                             settings.ledger_origin, Ed25519PrivateKey.generate())
    with signed_log.db.write() as cur:
        cur.execute("INSERT INTO kaoping_checkpoints (size, root, note, key_id, signed_at) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (16, merkle.root_of(leaves), forged, "00000000",
                     signed_log.clock.now().isoformat() if settings.engine == "sqlite"
                     else signed_log.clock.now()))
    failure = _first_failure(signed_log)
    assert failure.startswith("checkpoint at size 16: ")
    assert "signature" in failure


def test_drill_a_leaf_hash_rewritten_in_place(signed_log: Services, settings: Settings) -> None:
    with _superuser(settings) as conn:
        conn.execute(_q(settings, "UPDATE kaoping_ledger SET leaf_hash = %s WHERE position = 13"),
                     (bytes(32),))
    assert _first_failure(signed_log).startswith("position 13: ")
