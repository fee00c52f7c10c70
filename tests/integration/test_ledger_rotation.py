"""Rotating the ledger's signing key on both stores: old checkpoints keep verifying with the
retired key, new ones with the successor, the handover with both; the log only grew across it;
the successor inherits the refusal to sign a truncated store; the rotation is in the log."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from litestar.testing import TestClient

from domain.errors import InvalidInput
from domain.ledger_keys import LedgerKeys
from service.clock import FixedClock
from service.ledger import merkle
from service.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    open_checkpoint,
    open_note,
    sign_checkpoint,
)
from service.ledger.guard import LedgerHalted
from service.ledger.rotation import rotate_ledger_key
from service.ledger.signer import RotationPending, SignerRefused
from service.ledger.verify_log import logged_handovers, verify_log
from service.runtime import Services
from service.settings import Settings
from tests.e2e.test_cli import _kaoping
from tests.integration.test_ledger import _add, _copy_store

ORIGIN = Settings().ledger_origin


def _rotate(services: Services, reason: str = "annual rotation") -> Any:
    return rotate_ledger_key(services.signer, services.store, services.db, services.clock.now(),
                             reason=reason, authority="Organization Dept. minutes 2026-07",
                             actor="operator:test")


def _signatures(note: bytes) -> int:
    return note.decode().rsplit("\n\n", 1)[1].count("\u2014 ")


def test_old_checkpoints_verify_with_the_retired_key_new_ones_with_the_successor(
        services: Services) -> None:
    _add(services, 6)
    before = services.signer.sign(services.db, services.clock.now())
    old = services.signer.vkey
    handover = _rotate(services)
    new = services.signer.vkey
    assert (handover.retired, handover.successor) == (old, new) and old != new
    _add(services, 3, start=10)
    after = services.signer.sign(services.db, services.clock.now())

    assert open_checkpoint(before.note, [old]).size == before.size
    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        open_checkpoint(before.note, [new])
    assert open_checkpoint(after.note, [new]).size == after.size
    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        open_checkpoint(after.note, [old])
    # The handover verifies with either key alone: two signature lines over one tree.
    note = handover.checkpoint.note
    assert _signatures(note) == 2
    assert open_checkpoint(note, [old]) == open_checkpoint(note, [new])
    assert before.size < handover.checkpoint.size < after.size

    # The log only grew across the rotation: a proof from the old key's tree to the new one's.
    proof = services.ledger.consistency(before.size, after.size)
    assert merkle.verify_consistency(before.size, after.size, before.root, after.root, proof)
    assert not merkle.verify_consistency(before.size, after.size, before.root,
                                         handover.checkpoint.root, proof)
    # verify-log checks every checkpoint with the keys it is given: all of the log's keys.
    assert verify_log(services.db, services.signer.trusted_vkeys(), origin=ORIGIN).ok
    only_new = verify_log(services.db, [new], origin=ORIGIN)
    assert not only_new.ok
    assert f"checkpoint at size {before.size}" in only_new.failures[0]


def test_the_handover_tree_contains_the_recorded_rotation(services: Services) -> None:
    _add(services, 3)
    services.signer.sign(services.db, services.clock.now())
    handover = _rotate(services, reason="the HSM is replaced")
    keys: LedgerKeys = services.store.repository.get(LedgerKeys.id_for(ORIGIN))
    assert keys.keys == [handover.retired, handover.successor]
    assert keys.handovers == [(handover.retired, handover.successor, "the HSM is replaced",
                               "Organization Dept. minutes 2026-07")]
    with services.db.read() as cur:
        cur.execute("SELECT position, leaf_hash FROM kaoping_ledger WHERE stream_id = %s "
                    "ORDER BY stream_version", (LedgerKeys.id_for(ORIGIN),)
                    if services.db.engine == "postgres" else
                    (LedgerKeys.id_for(ORIGIN).hex,))
        rows = cur.fetchall()
    assert len(rows) == 2  # recorded (the key in use), then rotated
    position, leaf = int(rows[-1][0]), bytes(rows[-1][1])
    size = handover.checkpoint.size
    assert position == size - 1  # the handover is the first tree containing the rotation
    leaf_out, proof = services.ledger.inclusion(position, size)
    assert leaf_out == leaf
    assert merkle.verify_inclusion(position, size, leaf, proof, handover.checkpoint.root)


def test_a_rotation_needs_a_reason_and_an_authority(services: Services) -> None:
    _add(services, 1)
    old = services.signer.vkey
    with pytest.raises(InvalidInput, match="states its reason"):
        _rotate(services, reason=" ")
    # Refused before anything was recorded or signed; the pending key blocks signing until a
    # complete rotation is run.
    assert services.signer.vkey == old
    with pytest.raises(RotationPending):
        services.signer.sign(services.db, services.clock.now())
    handover = _rotate(services)
    assert handover.retired == old
    assert not services.signer.next_path.exists()
    services.signer.sign(services.db, services.clock.now())


def test_the_successor_refuses_a_store_restored_from_before_the_rotation(
        settings: Settings, clock: FixedClock, tmp_path: Path) -> None:
    live = Services(settings, clock=clock)
    _add(live, 5)
    live.signer.sign(live.db, clock.now())
    live.close()
    backup = _copy_store(settings, tmp_path)
    live = Services(settings, clock=clock)
    handover = _rotate(live)
    live.close()

    restored = Services(backup, clock=clock)  # the same key directory: the successor's key
    try:
        assert restored.signer.vkey == handover.successor
        # Fewer leaves than the handover covered: no write (the rollback guard), no signature.
        with pytest.raises(LedgerHalted, match="were acknowledged and are gone"):
            _add(restored, 1, start=101)
        with pytest.raises(SignerRefused,
                           match=f"already signed a tree of size {handover.checkpoint.size}"):
            restored.signer.sign(restored.db, clock.now())
    finally:
        restored.close()


def test_another_process_signs_with_the_successor_without_a_restart(
        settings: Settings, services: Services, clock: FixedClock) -> None:
    worker = Services(settings, clock=clock)  # e.g. `kaoping project`, started before
    try:
        _add(services, 2)
        worker.signer.sign(worker.db, clock.now())
        handover = _rotate(services)
        _add(services, 2, start=10)
        cp = worker.signer.sign(worker.db, clock.now())
        assert worker.signer.vkey == handover.successor
        assert open_checkpoint(cp.note, [handover.successor]).size == cp.size
        with pytest.raises(CheckpointError):
            open_checkpoint(cp.note, [handover.retired])
    finally:
        worker.close()


def test_the_keys_are_published_with_the_checkpoints_each_signed(
        client: TestClient[Any], services: Services) -> None:
    _add(services, 2)
    first = services.signer.sign(services.db, services.clock.now())
    _add(services, 2, start=10)
    second = services.signer.sign(services.db, services.clock.now())
    handover = _rotate(services)
    _add(services, 2, start=20)
    third = services.signer.sign(services.db, services.clock.now())

    assert client.get("/api/v1/ledger/key").text.strip() == handover.successor
    resp = client.get("/api/v1/ledger/keys")
    assert resp.status_code == 200
    current, retired = resp.json()["keys"]
    assert current == {"vkey": handover.successor, "key_id": handover.successor.split("+", 2)[1],
                       "status": "current", "checkpoints": 2,
                       "first_size": handover.checkpoint.size, "last_size": third.size,
                       "successor": None, "handover_size": None, "retired_at": None,
                       "reason": None, "authority": None}
    assert retired == {
        "vkey": handover.retired, "key_id": handover.retired.split("+", 2)[1],
        "status": "retired", "checkpoints": 3, "first_size": first.size,
        "last_size": handover.checkpoint.size, "successor": handover.successor,
        "handover_size": handover.checkpoint.size, "retired_at": retired["retired_at"],
        "reason": "annual rotation", "authority": "Organization Dept. minutes 2026-07"}
    assert second.size < handover.checkpoint.size
    # What is published is public: no private key material in the keyring or the answer.
    keyring = Path(f"{services.settings.signing_key_path}.keyring.json").read_bytes()
    assert b"PRIVATE" not in keyring and b"PRIVATE" not in resp.content
    assert msgspec.json.decode(keyring)["retired"][0]["vkey"] == handover.retired
    # Each published key opens its own checkpoints.
    for size, vkey in ((first.size, handover.retired), (third.size, handover.successor)):
        note = client.get(f"/api/v1/ledger/checkpoint?size={size}").content
        assert open_note(note, [vkey])
    assert base64.b64decode(handover.successor.split("+", 2)[2])[0] == 1  # Ed25519 vkey


def _leaked_then_rotated(services: Services) -> tuple[Ed25519PrivateKey, Any]:
    """A signed log, a kept copy of its key, a rotation away from it and more events after."""
    _add(services, 4)
    services.signer.sign(services.db, services.clock.now())
    leaked = load_pem_private_key(Path(services.signer.key_path).read_bytes(), None)
    assert isinstance(leaked, Ed25519PrivateKey)
    handover = _rotate(services, reason="the key leaked")
    _add(services, 3, start=10)
    return leaked, handover


def _forge_head(services: Services, key: Ed25519PrivateKey) -> tuple[int, bytes]:
    """The honest tree at the log's head, signed by ``key`` alone: (size, note)."""
    with services.db.read() as cur:
        cur.execute("SELECT leaf_hash FROM kaoping_ledger ORDER BY position")
        leaves = [bytes(h) for (h,) in cur.fetchall()]
    size, root = len(leaves), merkle.root_of(leaves)
    return size, sign_checkpoint(Checkpoint(ORIGIN, size, root), ORIGIN, key)


def test_the_signer_trusts_a_retired_key_only_up_to_its_handover(services: Services) -> None:
    leaked, handover = _leaked_then_rotated(services)
    signer = services.signer
    assert signer.retired_bounds() == {handover.retired: handover.checkpoint.size}
    size, forged = _forge_head(services, leaked)
    assert size > handover.checkpoint.size
    signer.state_path.write_bytes(forged)  # the retired key alone, past the handover
    with pytest.raises(SignerRefused, match=f"handover at size {handover.checkpoint.size}"):
        signer.last_signed()
    with pytest.raises(SignerRefused):
        signer.sign(services.db, services.clock.now())
    signer.state_path.write_bytes(handover.checkpoint.note)  # co-signed at the handover: fine
    assert signer.sign(services.db, services.clock.now()).size == size


def test_verify_log_refuses_a_checkpoint_the_retired_key_signed_past_its_handover(
        services: Services, settings: Settings) -> None:
    leaked, handover = _leaked_then_rotated(services)
    assert logged_handovers(services.db, ORIGIN) == {handover.retired: handover.checkpoint.size}
    size, forged = _forge_head(services, leaked)
    root = open_checkpoint(forged, [handover.retired]).root
    with services.db.write() as cur:
        cur.execute("INSERT INTO kaoping_checkpoints (size, root, note, key_id, signed_at) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (size, root, forged, handover.retired.split("+", 2)[1],
                     services.clock.now().isoformat() if settings.engine == "sqlite"
                     else services.clock.now()))
    report = verify_log(services.db, services.signer.trusted_vkeys(),
                        retired=services.signer.retired_bounds(), origin=ORIGIN)
    assert not report.ok
    assert report.failures[0].startswith(f"checkpoint at size {size}: ")
    assert f"handover at size {handover.checkpoint.size}" in report.failures[0]
    # Without the keyring (only the keys given), the log's own rotation events bound the key.
    extra = {"KAOPING_SIGNING_KEY_PATH": settings.signing_key_path}
    for args in ((), ("--key", handover.retired, "--key", handover.successor)):
        out = _kaoping(settings, "verify-log", *args, extra=extra)
        assert out.returncode == 1, out.stdout
        assert f"checkpoint at size {size}: " in out.stderr
    services.signer.keyring_path.unlink()
    out = _kaoping(settings, "verify-log", "--key", handover.retired, "--key",
                   handover.successor, extra=extra)
    assert out.returncode == 1, out.stdout
    assert f"handover at size {handover.checkpoint.size}" in out.stderr


def test_a_rotation_interrupted_before_its_last_step_is_finished_by_running_it_again(
        services: Services) -> None:
    _add(services, 3)
    services.signer.sign(services.db, services.clock.now())
    handover = _rotate(services)
    signer = services.signer
    # A crash just before `.next` was unlinked: the successor is in both files.
    shutil.copy(signer.key_path, signer.next_path)
    with pytest.raises(RotationPending):
        signer.sign(services.db, services.clock.now())
    again = _rotate(services)  # "run the command again"
    assert (again.retired, again.successor) == (handover.retired, handover.successor)
    assert again.checkpoint == handover.checkpoint
    assert not signer.next_path.exists()
    assert signer.vkey == handover.successor
    keys: LedgerKeys = services.store.repository.get(LedgerKeys.id_for(ORIGIN))
    assert keys.keys == [handover.retired, handover.successor]  # no second rotation recorded
    _add(services, 2, start=10)
    after = signer.sign(services.db, services.clock.now())
    assert open_checkpoint(after.note, [handover.successor]).size == after.size
    # Once finished, running it again is a new rotation, as ever.
    assert _rotate(services).retired == handover.successor


def test_a_rotation_interrupted_before_the_key_file_was_replaced_is_finished(
        services: Services) -> None:
    _add(services, 3)
    services.signer.sign(services.db, services.clock.now())
    signer = services.signer
    old = signer.vkey
    backup = Path(f"{signer.key_path}.bak")
    shutil.copy(signer.key_path, backup)
    handover = _rotate(services)
    # A crash after the keyring was written, before the key file was replaced.
    shutil.copy(signer.key_path, signer.next_path)
    shutil.copy(backup, signer.key_path)
    signer.refresh()
    assert signer.vkey == old
    again = _rotate(services)
    assert (again.retired, again.successor) == (old, handover.successor)
    assert again.checkpoint.size == handover.checkpoint.size
    assert not signer.next_path.exists() and signer.vkey == handover.successor
    assert signer.retired_bounds() == {old: handover.checkpoint.size}


def test_a_next_key_that_is_current_without_a_recorded_handover_is_refused(
        services: Services) -> None:
    _add(services, 2)
    services.signer.sign(services.db, services.clock.now())
    shutil.copy(services.signer.key_path, services.signer.next_path)
    with pytest.raises(SignerRefused, match="records no handover to it"):
        _rotate(services)
    assert services.signer.next_path.exists()
