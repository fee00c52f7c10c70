"""Idempotency-Key (draft-ietf-httpapi-idempotency-key-header), scoped to the principal.

The key is reserved in its own transaction before the command runs, so a concurrent duplicate
sees it and gets 409 with ``Retry-After``. It is completed *in the same transaction as the
events* (through the recorder's ``after_append`` hook), so a crash never leaves a completed key
without its events. A retry gets the first response rebuilt from those events and their ledger
positions. If the command is refused, the reservation is released: nothing was written, and a
retry runs afresh.

A reservation is a lease (``KAOPING_IDEMPOTENCY_LEASE_SECONDS``): a process killed mid-request
(``kill -9``, a lost machine) leaves its key ``pending``, and once the lease has run out a retry
takes the reservation over with a new lease token and performs the request. Completion matches
the token, so if the first process was only slow, not dead, whichever completes second finds
its reservation taken and its transaction (events and all) rolls back: the request is performed
once. Concurrent first uses race on one INSERT ... ON CONFLICT DO NOTHING: one wins, the others
read its row (409 while it is in flight, its result once done) and never see a 5xx.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

import msgspec

from domain.errors import Busy, InvalidInput
from service.db import db_time

if TYPE_CHECKING:
    from service.db import Cursor, Database
    from service.store import AfterAppend, Leaf

# Keys are kept 24 hours, then expire (the retention Zuora and Stripe publish; domain-notes §4.3).
RETENTION = timedelta(hours=24)
DEFAULT_LEASE = timedelta(seconds=30)  # KAOPING_IDEMPOTENCY_LEASE_SECONDS, docs/operations.md
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True)
class Completed:
    status: int
    stream_id: UUID
    stream_version: int
    positions: list[int]
    extra: bytes | None = None  # what the route kept for a replay (see completer)


def fingerprint(method: str, path: str, body: bytes) -> bytes:
    """Bodies are compared as parsed JSON: key order and white space do not matter. A body
    that is not JSON (an uploaded document) is compared byte for byte."""
    try:
        canonical = msgspec.json.encode(msgspec.json.decode(body), order="sorted") if body \
            else b""
    except msgspec.DecodeError:
        canonical = b"bytes:" + body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).digest()


def check_key(key: str) -> str:
    # The draft defines the header as an RFC 8941 sf-string; accept the quoted and bare forms.
    bare = key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key
    if not _KEY.match(bare):
        msg = "Idempotency-Key must be 1-255 visible ASCII characters (a UUID is recommended)"
        raise InvalidInput(msg, rule="idempotency-key.format", field="Idempotency-Key")
    return bare


@dataclass(frozen=True)
class Reservation:
    """The right to perform a request once: completing it needs this lease token."""

    token: str


def _when(value: object) -> datetime:
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(at, datetime):
        msg = f"unexpected timestamp {value!r} in the idempotency store"
        raise TypeError(msg)
    return at


class IdempotencyStore:
    def __init__(self, db: Database, lease: timedelta = DEFAULT_LEASE) -> None:
        self.db = db
        self.lease = lease

    def _ts(self, at: datetime) -> object:
        return db_time(self.db.engine, at)

    def reserve(self, principal: str, key: str, digest: bytes,
                now: datetime) -> Completed | Reservation:
        """Reserve ``key`` (a Reservation: run the command), or return the first result."""
        token = secrets.token_hex(16)
        with self.db.write() as cur:
            cur.execute(
                "SELECT fingerprint, state, created_at, response_status, stream_id, "
                "stream_version, positions, extra, lease_until FROM kaoping_idempotency "
                "WHERE principal = %s AND idem_key = %s",
                (principal, key),
            )
            row = cur.fetchone()
            if row is not None and self._expired(row[2], now):
                cur.execute("DELETE FROM kaoping_idempotency WHERE principal = %s AND "
                            "idem_key = %s", (principal, key))
                row = None
            if row is None:
                cur.execute(
                    "INSERT INTO kaoping_idempotency (principal, idem_key, fingerprint, state, "
                    "created_at, lease_token, lease_until) VALUES (%s, %s, %s, 'pending', %s, "
                    "%s, %s) ON CONFLICT (principal, idem_key) DO NOTHING RETURNING 1",
                    (principal, key, digest, self._ts(now), token, self._ts(now + self.lease)),
                )
                if cur.fetchall():
                    return Reservation(token)
        if row is None:  # a concurrent first use won the INSERT: answer from its row
            return self.reserve(principal, key, digest, now)
        return self._existing(principal, key, digest, row, now, token)

    def _existing(self, principal: str, key: str, digest: bytes, row: tuple[object, ...],
                  now: datetime, token: str) -> Completed | Reservation:
        stored, state, _, status, stream_id, version, positions, extra, lease_until = row
        if bytes(stored) != digest:  # type: ignore[call-overload]
            msg = "this Idempotency-Key was used with a different request body or endpoint"
            raise InvalidInput(msg, rule="idempotency-key.reused", field="Idempotency-Key")
        if state == "done":
            return Completed(int(status), UUID(str(stream_id)), int(version),  # type: ignore[call-overload]
                             msgspec.json.decode(str(positions), type=list[int]),
                             None if extra is None else bytes(extra))  # type: ignore[call-overload]
        until = _when(lease_until) if lease_until is not None else now
        if until > now:
            msg = ("a request with this Idempotency-Key is still being processed; retry after "
                   "its lease runs out")
            raise Busy(msg, rule="idempotency-key.in-progress", field="Idempotency-Key",
                       retry_after=max(1, math.ceil((until - now).total_seconds())))
        # The lease ran out: the request that held it died (or is too slow to win). Take over.
        with self.db.write() as cur:
            cur.execute(
                "UPDATE kaoping_idempotency SET lease_token = %s, lease_until = %s "
                "WHERE principal = %s AND idem_key = %s AND state = 'pending' AND "
                "(lease_until IS NULL OR lease_until <= %s) RETURNING 1",
                (token, self._ts(now + self.lease), principal, key, self._ts(now)))
            taken = bool(cur.fetchall())
        return Reservation(token) if taken else self.reserve(principal, key, digest, now)

    def done(self, principal: str, key: str) -> bool:
        """Whether ``key`` completed a command already (its retry will be a replay)."""
        with self.db.read() as cur:
            cur.execute("SELECT state FROM kaoping_idempotency WHERE principal = %s AND "
                        "idem_key = %s", (principal, key))
            row = cur.fetchone()
        return row is not None and row[0] == "done"

    @staticmethod
    def _expired(created: object, now: datetime) -> bool:
        return now - _when(created) > RETENTION

    def completer(self, principal: str, key: str, status: int,
                  held: Reservation, extra: bytes | None = None) -> AfterAppend:
        """The hook that completes the key inside the events' own transaction. The response is
        rebuilt from the first stream written (the command's resource) at its new version,
        plus ``extra``: what the events cannot give back (a code kept only as a hash). Only
        the current lease holder completes it; anyone else's transaction rolls back."""

        def complete(cur: Cursor, leaves: list[Leaf]) -> None:
            stream_id = leaves[0].stream_id
            version = max(lf.stream_version for lf in leaves if lf.stream_id == stream_id)
            cur.execute(
                "UPDATE kaoping_idempotency SET state = 'done', response_status = %s, "
                "stream_id = %s, stream_version = %s, positions = %s, extra = %s "
                "WHERE principal = %s AND idem_key = %s AND state = 'pending' "
                "AND lease_token = %s RETURNING 1",
                (status, str(stream_id), version,
                 msgspec.json.encode([lf.position for lf in leaves]).decode(), extra,
                 principal, key, held.token),
            )
            # RETURNING + fetch rather than rowcount: in psycopg's pipeline mode (the library's
            # write path) rowcount is not known until the pipeline syncs.
            if len(cur.fetchall()) != 1:
                msg = ("this request's Idempotency-Key lease ran out and another attempt took "
                       "it over; nothing was written by this one")
                raise Busy(msg, rule="idempotency-key.lease-lost", field="Idempotency-Key",
                           retry_after=1)

        return complete

    def mark_done(self, principal: str, key: str, status: int, stream_id: UUID,
                  version: int) -> None:
        """Complete a key whose response is never replayed (credential codes are shown once)."""
        with self.db.write() as cur:
            cur.execute(
                "UPDATE kaoping_idempotency SET state = 'done', response_status = %s, "
                "stream_id = %s, stream_version = %s, positions = '[]' "
                "WHERE principal = %s AND idem_key = %s",
                (status, str(stream_id), version, principal, key))

    def purge(self, now: datetime) -> int:
        """Forget keys older than the retention (a housekeeping job runs this); return how many.
        An expired key is also replaced when it is reused, so this only bounds the table."""
        with self.db.write() as cur:
            cur.execute("DELETE FROM kaoping_idempotency WHERE created_at < %s RETURNING 1",
                        (self._ts(now - RETENTION),))
            return len(cur.fetchall())

    def release(self, principal: str, key: str, held: Reservation) -> None:
        with self.db.write() as cur:
            cur.execute(
                "DELETE FROM kaoping_idempotency WHERE principal = %s AND idem_key = %s "
                "AND state = 'pending' AND lease_token = %s",
                (principal, key, held.token),
            )
