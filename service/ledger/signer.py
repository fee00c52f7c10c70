"""The checkpoint signer: extends the stored tree, signs C2SP checkpoints, refuses to fork.

The signer keeps the last checkpoint it signed in a file beside its key, outside the database.
Before signing size N it recomputes, from the database, the root at the size of that last
checkpoint: if the database is shorter (restored from an old backup) or has another root there
(rewritten), it refuses. So a log cannot be rolled back or rewritten and silently re-signed with
this key; doing it on purpose means deleting the state file, which is an act someone answers for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from service.keys import load_or_create_ed25519
from service.ledger import merkle
from service.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    open_checkpoint,
    sign_checkpoint,
    verifier_key,
)
from service.ledger.tree import extend_nodes, head_size, node_reader

if TYPE_CHECKING:
    from service.db import Cursor, Database

_ADVISORY_LOCK_KEY = 0x6B70636B7074  # serialises signers on PostgreSQL


class SignerRefused(RuntimeError):
    """The store is not an extension of the last checkpoint this signer signed."""


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: bytes


def latest_checkpoint(cur: Cursor) -> StoredCheckpoint | None:
    cur.execute("SELECT size, root, note FROM kaoping_checkpoints ORDER BY size DESC LIMIT 1")
    row = cur.fetchone()
    return None if row is None else StoredCheckpoint(int(row[0]), bytes(row[1]), bytes(row[2]))


def checkpoint_at(cur: Cursor, size: int) -> StoredCheckpoint | None:
    cur.execute("SELECT size, root, note FROM kaoping_checkpoints WHERE size = %s", (size,))
    row = cur.fetchone()
    return None if row is None else StoredCheckpoint(int(row[0]), bytes(row[1]), bytes(row[2]))


class LedgerSigner:
    def __init__(self, key_path: str | Path, origin: str) -> None:
        self.origin = origin
        self._key = load_or_create_ed25519(key_path)
        self.vkey = verifier_key(origin, self._key.public_key())
        self.state_path = Path(f"{key_path}.last-checkpoint")

    def last_signed(self) -> Checkpoint | None:
        if not self.state_path.exists():
            return None
        try:
            return open_checkpoint(self.state_path.read_bytes(), [self.vkey], origin=self.origin)
        except CheckpointError as exc:
            msg = f"{self.state_path} does not hold a checkpoint signed by this key: {exc}"
            raise SignerRefused(msg) from exc

    def _remember(self, note: bytes) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(note)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.state_path)

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
            note = sign_checkpoint(Checkpoint(self.origin, size, root), self.origin, self._key)
            key_id = self.vkey.split("+")[1]
            cur.execute(
                "INSERT INTO kaoping_checkpoints (size, root, note, key_id, signed_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (size, root, note, key_id, now.isoformat() if cur.engine == "sqlite" else now))
            # Remember before COMMIT: if the commit then fails, the next signing still
            # extends what is remembered (the same leaves are in the store or it refuses).
            self._remember(note)
        return StoredCheckpoint(size, root, note)
