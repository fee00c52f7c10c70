"""Rotating the ledger's signing key, as a verifiable handover.

1. The successor key is generated beside the current one (``<key>.next``, mode 0600). While it
   exists, no process signs a checkpoint (``RotationPending``).
2. The rotation is recorded in the log: ``LedgerKeys.Rotated`` names both verifier keys, the
   reason and the authority.
3. The handover checkpoint — the first tree that contains that event — is signed by both keys
   (two signature lines, C2SP signed-note). The retired key thereby vouches, in a tree it signs,
   for its successor; the successor's signature proves it was there. The state file beside the
   key holds this note, which verifies with either key, so the successor refuses a shorter or
   rewritten store exactly as its predecessor did.
4. The retired verifier key goes to the keyring; the successor replaces the key file (the
   retired private key is destroyed).

Each step is idempotent, and all run under the signer's lock: an interrupted rotation is
finished by running the command again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from eventsourcing.application import AggregateNotFoundError

from domain.ledger_keys import LedgerKeys
from service.keys import load_or_create_ed25519, private_pem, write_atomic
from service.ledger.checkpoint import CheckpointError, open_checkpoint, verifier_key
from service.ledger.keyring import RetiredKey, add_retired, read_keyring
from service.ledger.signer import SignerRefused, checkpoint_at

if TYPE_CHECKING:
    from datetime import datetime

    from service.db import Database
    from service.ledger.signer import LedgerSigner, StoredCheckpoint
    from service.store import EventStore


@dataclass(frozen=True)
class Handover:
    retired: str
    successor: str
    checkpoint: StoredCheckpoint


def _recorded(store: EventStore, signer: LedgerSigner, successor: str, reason: str,
              authority: str, actor: str) -> tuple[str, str, str, str]:
    """The rotation's event, appended unless an interrupted run already did."""
    try:
        keys: LedgerKeys = store.repository.get(LedgerKeys.id_for(signer.origin))
    except AggregateNotFoundError:
        keys = LedgerKeys(origin=signer.origin, key=signer.vkey, actor=actor)
    if keys.current != successor:
        keys.rotate(signer.vkey, successor, reason, authority, actor)
        store.save(keys)
    return keys.handovers[-1]


def _finish(signer: LedgerSigner, db: Database, successor: str) -> Handover:
    """The last step of a rotation whose successor already is the current key."""
    done = next((k for k in read_keyring(signer.keyring_path) if k.successor == successor), None)
    with db.read() as cur:
        checkpoint = None if done is None else checkpoint_at(cur, done.handover_size)
    if done is None or checkpoint is None:
        msg = (f"{signer.next_path} holds the current key, but the keyring records no handover "
               "to it; restore the key directory from its backup")
        raise SignerRefused(msg)
    signer.next_path.unlink()
    signer.refresh()
    return Handover(done.vkey, successor, checkpoint)


def rotate_ledger_key(signer: LedgerSigner, store: EventStore, db: Database, now: datetime, *,
                      reason: str, authority: str, actor: str) -> Handover:
    with signer.exclusive():
        if not signer.next_path.exists():
            signer.last_signed()  # refuse now, not half-way, if the state is unusable
        successor_key = load_or_create_ed25519(signer.next_path)
        successor = verifier_key(signer.origin, successor_key.public_key())
        if successor == signer.vkey:  # interrupted after the key file was replaced
            return _finish(signer, db, successor)
        retired = signer.vkey
        recorded, _, reason, authority = _recorded(store, signer, successor, reason, authority,
                                                   actor)
        if recorded != retired:
            msg = (f"the log records a rotation from {recorded}, but the current key is "
                   f"{retired}")
            raise SignerRefused(msg)
        checkpoint = signer.sign_locked(db, now, successor_key)
        try:
            open_checkpoint(checkpoint.note, [successor], origin=signer.origin)
        except CheckpointError:
            # The log did not grow since the last checkpoint, which only the old key signed:
            # impossible while the rotation holds the lock (the event is after that checkpoint).
            msg = (f"the checkpoint at size {checkpoint.size} covers the rotation event but "
                   "is not signed by the successor key")
            raise SignerRefused(msg) from None
        add_retired(signer.keyring_path, RetiredKey(
            vkey=retired, successor=successor, handover_size=checkpoint.size,
            retired_at=now.isoformat(), reason=reason, authority=authority))
        write_atomic(signer.key_path, private_pem(successor_key))
        signer.next_path.unlink()
        signer.refresh()
    return Handover(retired, successor, checkpoint)
