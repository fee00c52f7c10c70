"""Faults the database alone cannot show: a log restored from an old backup (its tail gone,
checkpoints and all), a stored tree node changed, a fork. ``verify-log`` finds each against the
signer's last checkpoint (kept beside its key) and by recomputing every node; the rollback guard
refuses writes and says why on /ready, instead of re-issuing acknowledged positions."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from service.keys import load_or_create_ed25519
from service.ledger import merkle
from service.ledger.checkpoint import Checkpoint, sign_checkpoint
from service.ledger.verify_log import verify_log
from service.runtime import Services
from service.settings import Settings
from tests.e2e.test_cli import _kaoping
from tests.integration.test_ledger import _add, _q, _rid, _superuser

Client = TestClient[Any]
UNIT = {"name": "Written after the restore", "kind": "department", "category": "vertical"}


def _head(services: Services) -> int:
    with services.db.read() as cur:
        cur.execute("SELECT count(*) FROM kaoping_ledger")
        row = cur.fetchone()
    assert row is not None
    return int(row[0])


def _signed(services: Services) -> int:
    return services.signer.sign(services.db, services.clock.now()).size


def _restore_old_backup(services: Services, settings: Settings, keep: int) -> None:
    """What restoring a backup taken at ``keep`` leaves does: the tail, its checkpoints and
    tree nodes are gone; the signer's state file (beside the key, not in the backup) is not."""
    with services.db.read() as cur:
        cur.execute("SELECT notification_id FROM kaoping_ledger WHERE position >= %s", (keep,))
        nids = [int(n) for (n,) in cur.fetchall()]
    with _superuser(settings) as conn:
        for nid in nids:
            conn.execute(_q(settings, f"DELETE FROM kaoping_events WHERE {_rid(settings)} = %s"),
                         (nid,))
        conn.execute(_q(settings, "DELETE FROM kaoping_ledger WHERE position >= %s"), (keep,))
        conn.execute(_q(settings, "DELETE FROM kaoping_checkpoints WHERE size > %s"), (keep,))
        conn.execute(_q(settings, "DELETE FROM kaoping_tree_nodes WHERE (idx + 1) * "
                                  "(CAST(1 AS bigint) << level) > %s"), (keep,))


@pytest.fixture
def restored(services: Services, settings: Settings) -> tuple[Services, int, int]:
    _add(services, 12)  # 15 events
    backup = _signed(services)
    _add(services, 2, start=20)  # 3 more, acknowledged and signed
    latest = _signed(services)
    assert (backup, latest) == (15, 18)
    _restore_old_backup(services, settings, backup)
    return services, backup, latest


def test_verify_log_catches_a_log_restored_from_an_old_backup(
        restored: tuple[Services, int, int], settings: Settings) -> None:
    services, backup, latest = restored
    # The database alone is self-consistent: every leaf and remaining checkpoint verifies.
    assert verify_log(services.db, [services.signer.vkey]).ok
    report = verify_log(services.db, [services.signer.vkey],
                        signed=services.signer.last_signed())
    assert report.failures == [
        f"the log holds {backup} leaves but this deployment's signer signed a tree of size "
        f"{latest} (its last checkpoint, kept beside its key): events were removed from the "
        "end, or the store was restored from an old backup"]
    cli = _kaoping(settings, "verify-log",
                   extra={"KAOPING_SIGNING_KEY_PATH": settings.signing_key_path})
    assert cli.returncode == 1
    assert f"signer signed a tree of size {latest}" in cli.stderr


def test_the_guard_refuses_writes_after_a_restore_and_ready_says_why(
        restored: tuple[Services, int, int], client: Client,
        organizer: dict[str, str]) -> None:
    services, backup, latest = restored
    resp = client.post("/api/v1/units", headers=organizer, json={"code": "ZZ-01", **UNIT})
    assert resp.status_code == 503, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    assert (problem["rule"], problem["field"]) == ("ledger.rolled-back", "ledger")
    assert f"holds {backup} leaves but this deployment signed a tree of {latest}" in (
        problem["detail"])
    assert _head(services) == backup  # positions 15..17 were not re-issued
    ready = client.get("/ready")
    assert ready.status_code == 503
    body = ready.json()
    assert (body["ready"], body["ledger"]) == (False, "ledger.rolled-back")
    assert any(p.startswith("ledger.rolled-back: the log holds 15 leaves") for p in
               body["problems"])


def test_the_guard_finds_a_fork(restored: tuple[Services, int, int],
                                client: Client) -> None:
    services, _, latest = restored
    # A process that does not check (today's main) wrote on after the restore: positions
    # 15..17 now hold other events than the ones signed.
    services.store.recorder.ledger_guard = None  # type: ignore[attr-defined]
    _add(services, 4, start=40)
    assert _head(services) > latest
    halted = services.guard.check(services.db)
    assert halted is not None
    assert halted.rule == "ledger.forked"
    assert f"first {latest} leaves give another root" in halted.detail
    services.store.recorder.ledger_guard = services.guard  # type: ignore[attr-defined]
    with pytest.raises(type(halted), match="forked"):
        _add(services, 1, start=60)
    ready: dict[str, Any] = client.get("/ready").json()
    assert ready["ledger"] == "ledger.forked"
    report = verify_log(services.db, [services.signer.vkey],
                        signed=services.signer.last_signed())
    assert any("has another root than the leaves stored now" in f for f in report.failures)


def test_a_changed_tree_node_is_caught_by_verify_log_and_the_guard(
        services: Services, settings: Settings, client: Client,
        organizer: dict[str, str]) -> None:
    _add(services, 14)  # 18 events: the signed root rests on nodes (4, 0) and (1, 8)
    assert _signed(services) == 18
    assert verify_log(services.db, [services.signer.vkey]).ok
    with _superuser(settings) as conn:
        conn.execute(_q(settings, "UPDATE kaoping_tree_nodes SET hash = %s WHERE level = 2 "
                                  "AND idx = 1"), (bytes(32),))
    report = verify_log(services.db, [services.signer.vkey])
    assert report.failures == [
        "tree node level 2 index 1 (leaves 4..7) does not match the hash of its leaves: a "
        "stored node was changed, and proofs served from it are wrong"]
    cli = _kaoping(settings, "verify-log",
                   extra={"KAOPING_SIGNING_KEY_PATH": settings.signing_key_path})
    assert cli.returncode == 1
    assert "tree node level 2 index 1" in cli.stderr
    # A node the signed root rests on: the guard sees it too, and names it.
    with _superuser(settings) as conn:
        conn.execute(_q(settings, "UPDATE kaoping_tree_nodes SET hash = %s WHERE level = 4 "
                                  "AND idx = 0"), (bytes(32),))
    # A running service re-checks every signer round and on /ready; writes follow.
    ready = client.get("/ready").json()
    assert ready["ledger"] == "ledger.node-changed"
    resp = client.post("/api/v1/units", headers=organizer, json={"code": "ZZ-03", **UNIT})
    assert resp.status_code == 503, resp.text
    assert resp.json()["rule"] == "ledger.node-changed"


def test_a_healthy_log_passes_everything(services: Services, settings: Settings,
                                         client: Client) -> None:
    _add(services, 20)
    size = _signed(services)
    report = verify_log(services.db, [services.signer.vkey],
                        signed=services.signer.last_signed())
    assert report.ok, report.failures
    assert (report.signed_size, report.events) == (size, size)
    assert report.nodes_checked == sum(size >> level for level in range(1, size.bit_length()))
    assert services.guard.check(services.db) is None
    assert client.get("/ready").json()["ledger"] == "ok"


def test_a_crash_between_remembering_and_committing_a_checkpoint_is_no_fault(
        services: Services) -> None:
    """The signer writes its state file just before its transaction commits: a crash there
    leaves the file ahead of the stored nodes and checkpoints (found by the kill -9 drill)."""
    _add(services, 6)
    _signed(services)
    _add(services, 6, start=10)
    size = _head(services)
    with services.db.read() as cur:
        cur.execute("SELECT leaf_hash FROM kaoping_ledger ORDER BY position")
        root = merkle.root_of([bytes(h) for (h,) in cur.fetchall()])
    key = load_or_create_ed25519(services.settings.signing_key_path)
    origin = services.settings.ledger_origin
    services.signer.state_path.write_bytes(
        sign_checkpoint(Checkpoint(origin, size, root), origin, key))
    assert services.guard.check(services.db) is None
    _add(services, 1, start=40)  # writes go on
    assert _signed(services) == size + 2  # and the next signing stores the nodes
    assert verify_log(services.db, [services.signer.vkey],
                      signed=services.signer.last_signed()).ok
