"""The ledger's retired keys, kept beside the current key, outside the database.

``<KAOPING_SIGNING_KEY_PATH>.keyring.json`` lists every retired verifier key (public halves only:
a retired private key is destroyed when its successor replaces it) with its successor, the size
of the handover checkpoint both signed, and the recorded reason and authority. The signer
trusts these keys for its own state file; ``GET /api/v1/ledger/keys`` publishes them with the
checkpoint sizes each key signed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec

from service.keys import write_atomic

if TYPE_CHECKING:
    from service.db import Cursor


class RetiredKey(msgspec.Struct, frozen=True, kw_only=True):
    vkey: str
    successor: str
    handover_size: int
    retired_at: str
    reason: str
    authority: str


class Keyring(msgspec.Struct):
    retired: list[RetiredKey]


def read_keyring(path: Path) -> list[RetiredKey]:
    try:
        return msgspec.json.decode(path.read_bytes(), type=Keyring).retired
    except FileNotFoundError:
        return []


def add_retired(path: Path, key: RetiredKey) -> None:
    kept = [k for k in read_keyring(path) if k.vkey != key.vkey]
    write_atomic(path, msgspec.json.encode(Keyring([*kept, key])), 0o644)


class LedgerKeyInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One key of the log, with the checkpoints it signed (sizes are tree sizes)."""

    vkey: str
    key_id: str
    status: Literal["current", "retired"]
    checkpoints: int
    first_size: int | None
    last_size: int | None
    successor: str | None = None
    handover_size: int | None = None
    retired_at: str | None = None
    reason: str | None = None
    authority: str | None = None


def describe(cur: Cursor, current: str, retired: list[RetiredKey]) -> list[LedgerKeyInfo]:
    """Every key, current first, then the retired ones from the most recently retired.
    A handover checkpoint is stored under its successor's key id and counted for both keys."""
    cur.execute("SELECT key_id, COUNT(*), MIN(size), MAX(size) FROM kaoping_checkpoints "
                "GROUP BY key_id")
    signed = {str(k): (int(n), int(lo), int(hi)) for k, n, lo, hi in cur.fetchall()}
    out = []
    for key in reversed(retired):
        kid = key.vkey.split("+", 2)[1]
        n, lo, hi = signed.get(kid, (0, key.handover_size, key.handover_size))
        out.append(LedgerKeyInfo(
            vkey=key.vkey, key_id=kid, status="retired", checkpoints=n + 1,
            first_size=min(lo, key.handover_size), last_size=max(hi, key.handover_size),
            successor=key.successor, handover_size=key.handover_size, retired_at=key.retired_at,
            reason=key.reason, authority=key.authority))
    kid = current.split("+", 2)[1]
    n, lo, hi = signed.get(kid, (0, -1, -1))
    first = LedgerKeyInfo(vkey=current, key_id=kid, status="current", checkpoints=n,
                          first_size=lo if n else None, last_size=hi if n else None)
    return [first, *out]
