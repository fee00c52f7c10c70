"""The checkpoint signer: extends the stored tree, signs C2SP checkpoints, refuses to fork.

The signer keeps the last checkpoint it signed in a file beside its key, outside the database.
Before signing size N it recomputes, from the database, the root at the size of that last
checkpoint: if the database is shorter (restored from an old backup) or has another root there
(rewritten), it refuses. So a log cannot be rolled back or rewritten and silently re-signed with
this key; doing it on purpose means deleting the state file, which is an act someone answers for.

The key can be rotated (service/ledger/rotation.py): the state file carries over to the new key,
and so does the refusal. Every process re-reads the key file when it changes, and no checkpoint
is signed while a rotation is in progress (``<key>.next`` exists): the handover checkpoint, signed
by both keys, must be the first one after the rotation event.
"""

from __future__ import annotations

import contextlib
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import structlog

from service.keys import exclusive_lock, file_stamp, load_or_create_ed25519, write_atomic
from service.ledger import merkle
from service.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    open_checkpoint_within,
    sign_checkpoint,
    verifier_key,
)
from service.ledger.keyring import LedgerKeyInfo, describe, read_keyring
from service.ledger.tree import extend_nodes, head_size, node_reader

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from service.db import Cursor, Database

_ADVISORY_LOCK_KEY = 0x6B70636B7074  # serialises signers on PostgreSQL
_LEASE_KEY = 0x6B70636B6C73  # the signer lease: one background signer per database

log = structlog.get_logger("kaoping.signer")


class SignerRefused(RuntimeError):
    """The store is not an extension of the last checkpoint this signer signed."""


class RotationPending(RuntimeError):
    """A key rotation was started and not finished: nothing is signed until it is."""


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: bytes


def latest_checkpoint(cur: Cursor) -> StoredCheckpoint | None:
    cur.execute("SELECT size, root, note FROM kaoping_checkpoints ORDER BY size DESC LIMIT 1")
    row = cur.fetchone()
    return None if row is None else StoredCheckpoint(int(row[0]), bytes(row[1]), bytes(row[2]))


def list_checkpoints(cur: Cursor, before: int | None, limit: int) -> list[tuple[int, str, str]]:
    """(size, key id, signed at) of signed checkpoints, newest first, below ``before``."""
    cur.execute("SELECT size, key_id, signed_at FROM kaoping_checkpoints WHERE size < %s "
                "ORDER BY size DESC LIMIT %s", (2**62 if before is None else before, limit))
    return [(int(r[0]), str(r[1]), r[2].isoformat() if hasattr(r[2], "isoformat") else str(r[2]))
            for r in cur.fetchall()]


def checkpoint_at(cur: Cursor, size: int) -> StoredCheckpoint | None:
    cur.execute("SELECT size, root, note FROM kaoping_checkpoints WHERE size = %s", (size,))
    row = cur.fetchone()
    return None if row is None else StoredCheckpoint(int(row[0]), bytes(row[1]), bytes(row[2]))


class SignerLease:
    """Exactly one background signer per PostgreSQL database: a session advisory lock held on a
    connection of its own for as long as the signer runs. Another worker (a second `kaoping
    project`, a standby machine) fails to take it and waits, trying again every round; when the
    holder's session ends (process killed, machine gone, primary failed over) PostgreSQL
    releases the lock and the standby takes over. A holder whose connection broke stops
    signing at once and competes for the lease again. (Signing itself is also serialised by a
    transaction lock, so even `kaoping ledger checkpoint` beside the holder is safe.)"""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self.held = False

    def hold(self) -> bool:
        """Whether this process holds the lease now (taking it if it is free)."""
        try:
            if self._conn is None or self._conn.closed:
                self.held = False
                self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10,
                                             application_name="kaoping-signer")
            if self.held:
                self._conn.execute("SELECT 1")  # still our session: the lock is still ours
                return True
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (_LEASE_KEY,)).fetchone()
            self.held = bool(row and row[0])
            log.info("ledger.signer_lease", held=self.held,
                     note="signing" if self.held else "another worker signs; standing by")
        except psycopg.Error:
            log.warning("ledger.signer_lease_lost", exc_info=True)
            self.close()
        return self.held

    def close(self) -> None:
        self.held = False
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()  # the session ends, and with it the lock
            self._conn = None


class LedgerSigner:
    def __init__(self, key_path: str | Path, origin: str) -> None:
        self.origin = origin
        self.key_path = Path(key_path)
        self.state_path = Path(f"{key_path}.last-checkpoint")
        self.next_path = Path(f"{key_path}.next")
        self.keyring_path = Path(f"{key_path}.keyring.json")
        self._lock_path = Path(f"{key_path}.lock")
        self._guard = threading.Lock()
        self._stamp: tuple[object, ...] = ()
        self._load()

    def _load(self) -> None:
        key = load_or_create_ed25519(self.key_path)
        self._key, self._vkey = key, verifier_key(self.origin, key.public_key())
        self._stamp = file_stamp(self.key_path)

    def refresh(self) -> None:
        """Re-read the key if another process rotated it."""
        if file_stamp(self.key_path) != self._stamp:
            self._load()

    @property
    def vkey(self) -> str:
        """The current verifier key (as on disk now)."""
        self.refresh()
        return self._vkey

    def trusted_vkeys(self) -> list[str]:
        """The current verifier key and every retired one (the keyring beside the key)."""
        return [self.vkey, *(k.vkey for k in read_keyring(self.keyring_path))]

    def retired_bounds(self) -> dict[str, int]:
        """Each retired verifier key with its handover size: the largest tree it signs."""
        return {k.vkey: k.handover_size for k in read_keyring(self.keyring_path)}

    def keys(self, db: Database) -> list[LedgerKeyInfo]:
        """Every key of the log with its status and the checkpoint sizes it signed."""
        retired = read_keyring(self.keyring_path)
        with db.read() as cur:
            return describe(cur, self.vkey, retired)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Serialise signing and rotation across threads and processes sharing the key."""
        with self._guard, exclusive_lock(self._lock_path):
            self.refresh()
            yield

    def last_signed(self) -> Checkpoint | None:
        if not self.state_path.exists():
            return None
        try:
            return open_checkpoint_within(self.state_path.read_bytes(), [self.vkey],
                                          self.retired_bounds(), origin=self.origin)
        except CheckpointError as exc:
            msg = f"{self.state_path} does not hold a checkpoint signed by this log's keys: {exc}"
            raise SignerRefused(msg) from exc

    def _remember(self, note: bytes) -> None:
        write_atomic(self.state_path, note)

    def _check_extends(self, cur: Cursor, size: int) -> None:
        last = self.last_signed()
        if last is None:
            return
        if last.size > size:
            msg = (f"refusing to sign: this signer already signed a tree of size {last.size}, "
                   f"but the store holds only {size} leaves (restored from an old backup?)")
            raise SignerRefused(msg)
        root = merkle.tree_root(last.size, node_reader(cur))
        if root != last.root:
            msg = (f"refusing to sign: the store's root at size {last.size} is not the root this "
                   "signer signed there; the log was rewritten")
            raise SignerRefused(msg)

    def sign(self, db: Database, now: datetime) -> StoredCheckpoint:
        """Extend the tree to the head of the log and sign it (or return the current one)."""
        with self.exclusive():
            if self.next_path.exists():
                msg = (f"a ledger key rotation is in progress ({self.next_path} exists); finish "
                       "it with `kaoping keys rotate-ledger-key` before anything is signed")
                raise RotationPending(msg)
            return self.sign_locked(db, now)

    def sign_locked(self, db: Database, now: datetime,
                    successor: Ed25519PrivateKey | None = None) -> StoredCheckpoint:
        """``sign`` for a caller holding ``exclusive()``; with ``successor``, the new tree is
        signed by the current key and its successor (a key handover)."""
        with db.write() as cur:
            if cur.engine == "postgres":
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK_KEY,))
            latest = latest_checkpoint(cur)
            covered = latest.size if latest else 0
            size = head_size(cur)
            if latest is not None and size == latest.size:
                self._check_extends(cur, size)
                return latest
            extend_nodes(cur, covered, size)
            self._check_extends(cur, size)
            root = merkle.tree_root(size, node_reader(cur))
            signers = [self._key, *([successor] if successor else [])]
            note = sign_checkpoint(Checkpoint(self.origin, size, root), self.origin, *signers)
            newest = verifier_key(self.origin, signers[-1].public_key())
            cur.execute(
                "INSERT INTO kaoping_checkpoints (size, root, note, key_id, signed_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (size, root, note, newest.split("+", 2)[1],
                 now.isoformat() if cur.engine == "sqlite" else now))
            # Remember before COMMIT: if the commit then fails, the next signing still
            # extends what is remembered (the same leaves are in the store or it refuses).
            self._remember(note)
        return StoredCheckpoint(size, root, note)
