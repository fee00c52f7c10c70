"""One rate limiter shared by every API process on PostgreSQL (``KAOPING_RATE_LIMIT_STORE``).

A token bucket per (limiter, key) lives in one row of the UNLOGGED table
``kaoping_rate_buckets`` (migration 0030); a check is one UPSERT that refills the bucket by the
time elapsed, spends a token if there is one, and returns what is left, so concurrent API
processes (and machines) draw on the same budget with no lock held across a round trip. The
time is the database server's (``clock_timestamp()``), one clock for every process; a test
injects its own. UNLOGGED: a bucket is throttling state, not a record, so its writes skip the
WAL (cheap), are not replicated, and a crash of the primary empties the table — every client
starts with a full burst again, which is the trade-off stated in docs/operations.md.

Keys are never stored in clear: a client address is pseudonymised with HMAC under a key derived
from the console key file (which every API process already shares to open one another's
console sessions), and a bucket row is deleted by housekeeping once it would be full again.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg
import structlog
from psycopg_pool import PoolTimeout

from service.keys import load_or_create_ed25519

if TYPE_CHECKING:
    from service.db import Database

_NOW = "extract(epoch from clock_timestamp())"

# What the bucket holds now, refilled by the time elapsed (the old row's values, ``b``).
_AVAILABLE = ("LEAST(EXCLUDED.burst, b.tokens + GREATEST(0, EXCLUDED.at - b.at) * EXCLUDED.rate)")

# One check takes a lease of up to ``lease`` tokens, if at least one is there, and says how
# many it took (``taken``: RETURNING sees only the new row, so the grant is kept in it).
_TAKE = f"""
INSERT INTO kaoping_rate_buckets AS b (bucket, tokens, at, granted, rate, burst, taken)
VALUES (%s, %s - %s, COALESCE(%s, extract(epoch from clock_timestamp())), true, %s, %s, %s)
ON CONFLICT (bucket) DO UPDATE SET
    taken = CASE WHEN {_AVAILABLE} >= 1 THEN LEAST(EXCLUDED.taken, floor({_AVAILABLE})) ELSE 0 END,
    tokens = {_AVAILABLE} - CASE WHEN {_AVAILABLE} >= 1
                                 THEN LEAST(EXCLUDED.taken, floor({_AVAILABLE})) ELSE 0 END,
    granted = {_AVAILABLE} >= 1,
    at = GREATEST(b.at, EXCLUDED.at),
    rate = EXCLUDED.rate,
    burst = EXCLUDED.burst
RETURNING tokens, taken
"""  # noqa: S608 -- the interpolated text is the constant above, values are parameters

# A lease: a process takes a share of a bucket in one round trip and spends it from memory
# for at most LEASE_SECONDS; what it did not spend by then is dropped, never returned, so the
# shared budget is never exceeded (a process can only refuse a little early). The share is
# the burst / LEASE_SHARE, at most LEASE_MAX: with the defaults, 10 tokens of an anonymous
# client's 200 and 25 of a principal's 500 — a round trip every 10–25 requests instead of
# every request (the UPSERT on every ballot was 29 % of the API's samples, issue 15).
LEASE_SHARE = 20
LEASE_MAX = 32
LEASE_SECONDS = 1.0


def pseudonym_key(console_key_path: str) -> bytes:
    """The HMAC key for bucket names, derived from the console key every API process shares."""
    material = load_or_create_ed25519(console_key_path).private_bytes_raw()
    return hmac.new(material, b"kaoping rate-limit bucket v1", hashlib.sha256).digest()


log = structlog.get_logger("kaoping.throttle")
LOCAL_BUCKETS = 10_000  # the fallback's memory bound


class SharedLimiter:
    """``PrincipalLimiter``'s interface (``take``), its buckets in the database."""

    def __init__(self, db: Database, name: str, *, rate: float, burst: int, key: bytes,
                 now: Callable[[], float] | None = None) -> None:
        self.db, self.name, self.rate, self.burst = db, name, rate, burst
        self._key, self.now = key, now
        self._local: dict[str, tuple[float, float]] = {}  # while the database is unreachable
        self._lock = threading.Lock()
        self.lease = max(1, min(LEASE_MAX, burst // LEASE_SHARE))
        self.clock = time.monotonic
        self._leases: dict[str, tuple[int, float]] = {}  # principal -> (tokens left, until)

    blocking = True  # take() makes a round trip: the API calls it from a worker thread

    def leased(self, principal: str) -> bool:
        """Spend a token of a lease this process holds; False when ``take`` must be called."""
        with self._lock:
            held = self._leases.get(principal)
            if held is None:
                return False
            left, until = held
            if left < 1 or self.clock() >= until:
                del self._leases[principal]
                return False
            self._leases[principal] = (left - 1, until)
            return True

    def _bucket(self, principal: str) -> str:
        digest = hmac.new(self._key, f"{self.name}\0{principal}".encode(), hashlib.sha256)
        return digest.hexdigest()[:32]

    def take(self, principal: str) -> int | None:
        """Spend a token; return None, or the whole seconds to wait when the bucket is empty.
        While the database cannot be reached (a restart, a failover) the buckets fall back to
        this process's memory: a request still meets a limit, and then the store's own 503,
        never a 500 from the limiter (the PostgreSQL-restart fault drill)."""
        at = None if self.now is None else self.now()
        try:
            with self.db.write() as cur:
                burst, lease = float(self.burst), float(min(self.lease, self.burst))
                cur.execute(_TAKE, (self._bucket(principal), burst, lease, at, self.rate, burst,
                                    lease))
                row = cur.fetchone()
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout):
            log.warning("throttle.local_fallback", limiter=self.name)
            return self._take_locally(principal)
        assert row is not None  # noqa: S101 -- INSERT ... RETURNING always returns the row
        tokens, taken = float(row[0]), int(row[1])
        if taken >= 1:
            if taken > 1:
                with self._lock:
                    if len(self._leases) > LOCAL_BUCKETS:
                        self._leases.clear()  # bounded; a dropped lease only costs a trip
                    self._leases[principal] = (taken - 1, self.clock() + LEASE_SECONDS)
            return None
        return max(1, math.ceil((1 - tokens) / self.rate))

    def _take_locally(self, principal: str) -> int | None:
        now = time.monotonic()
        with self._lock:
            tokens, then = self._local.get(principal, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            granted = tokens >= 1
            self._local[principal] = (tokens - 1 if granted else tokens, now)
            if len(self._local) > LOCAL_BUCKETS:  # bounded: forget the oldest half
                for key in sorted(self._local, key=lambda k: self._local[k][1])[
                        :LOCAL_BUCKETS // 2]:
                    del self._local[key]
        return None if granted else max(1, math.ceil((1 - tokens) / self.rate))


def forget_full_buckets(db: Database, now: float | None = None) -> int:
    """Delete the buckets that have refilled (housekeeping): only clients still being
    throttled, or just active, keep a row."""
    with db.write() as cur:
        cur.execute(f"DELETE FROM kaoping_rate_buckets WHERE tokens + "  # noqa: S608 -- constant
                    f"(COALESCE(%s, {_NOW}) - at) * rate >= burst", (now,))
        return cur.rowcount


# --- refused ballot casts, shared ------------------------------------------------------------

# How old a process's view of a session's refusals may be before a check reads it again: one
# query a second per session and process, whatever the casting rate. A guesser spreading over
# N processes can therefore exceed its budget by what the other processes refused within that
# second (the anonymous request budget bounds it too).
REFUSALS_FRESH_SECONDS = 1.0

_REFUSALS = f"""
SELECT client, count(*), min(at) + %s - {_NOW}
FROM kaoping_ballot_refusals
WHERE session = %s AND at > {_NOW} - %s
GROUP BY client
"""  # noqa: S608 -- the interpolated text is a constant, values are parameters

# The refusals a window of %s seconds has left behind.
_FORGET_REFUSALS = f"DELETE FROM kaoping_ballot_refusals WHERE at <= {_NOW} - %s"  # noqa: S608


class _SessionRefusals:
    """One session's refusals as last read (client -> count, seconds until its oldest leaves
    the window), and the ones this process recorded since (client -> monotonic times)."""

    def __init__(self, read_at: float, counts: dict[str, tuple[int, float]]) -> None:
        self.read_at, self.counts = read_at, counts
        self.since: dict[str, list[float]] = {}


class SharedRefusals:
    """``FailureLimiter``'s budgets (per client and session, per session, over a sliding
    window), counted from ``kaoping_ballot_refusals`` (migration 0032) so that every API
    process draws on one budget. A check never waits for the database: it reads this
    process's view of the session, which the API refreshes from a worker thread when it is
    older than REFUSALS_FRESH_SECONDS (``stale``/``refresh``); a refusal is written at once
    (``failed``, from a worker thread) and counted here at once. While the database cannot be
    reached, ``fallback`` (this process's own FailureLimiter) decides."""

    blocking = True

    def __init__(self, db: Database, *, per_client: int, per_session: int, window: float,
                 key: bytes, fallback: Any, fresh: float = REFUSALS_FRESH_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db, self.per_client, self.per_session = db, per_client, per_session
        self.window, self.fresh, self.clock = window, fresh, clock
        self._key, self.fallback = key, fallback
        self._sessions: dict[str, _SessionRefusals] = {}
        self._refreshing: set[str] = set()  # one read of a session in flight at a time
        self._offline = False
        self._lock = threading.Lock()

    def _client(self, client: str) -> str:
        digest = hmac.new(self._key, f"ballot-refusals\0{client}".encode(), hashlib.sha256)
        return digest.hexdigest()[:32]

    def stale(self, session: str) -> bool:
        """Whether the caller must ``refresh`` the session's view now: it is older than
        ``fresh`` and no other request is refreshing it (one read in flight per session: the
        others check against the view they have)."""
        with self._lock:
            seen = self._sessions.get(session)
            if session in self._refreshing or (
                    seen is not None and self.clock() - seen.read_at < self.fresh):
                return False
            self._refreshing.add(session)
            return True

    def refresh(self, session: str) -> None:
        """Read the session's refusals in the window (one query), after deleting every
        refusal the window has left behind: while anyone casts, no row outlives its window by
        more than REFUSALS_FRESH_SECONDS (housekeeping deletes the rest)."""
        started = self.clock()
        try:
            with self.db.write() as cur:
                cur.execute(_FORGET_REFUSALS, (self.window,))
                cur.execute(_REFUSALS, (self.window, session, self.window))
                counts = {str(c): (int(n), float(left)) for c, n, left in cur.fetchall()}
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout):
            log.warning("throttle.local_fallback", limiter="ballot-refusals")
            self._offline = True
            return
        finally:
            with self._lock:
                self._refreshing.discard(session)
        self._offline = False
        with self._lock:
            previous = self._sessions.get(session)
            if previous is not None and previous.read_at > started:
                return  # a read that started later has already answered
            fresh = _SessionRefusals(started, counts)
            if previous is not None:  # recorded here while the query ran: maybe not in it
                fresh.since = {c: kept for c, times in previous.since.items()
                               if (kept := [t for t in times if t >= started])}
            self._sessions[session] = fresh
            if len(self._sessions) > LOCAL_BUCKETS:  # bounded: forget the oldest views
                for code in sorted(self._sessions, key=lambda k: self._sessions[k].read_at)[
                        :LOCAL_BUCKETS // 2]:
                    del self._sessions[code]

    def _count(self, seen: _SessionRefusals, client: str, now: float) -> tuple[int, float]:
        """(refusals of ``client`` in the window, seconds until the oldest leaves it)."""
        count, left = seen.counts.get(client, (0, math.inf))
        left -= now - seen.read_at  # counted until the next read, a second at most
        mine = [t for t in seen.since.get(client, []) if t > now - self.window]
        if mine:
            left = min(left, mine[0] + self.window - now)
        return count + len(mine), left

    def retry_after(self, client: str, session: str) -> tuple[int, str] | None:
        """Seconds to wait and the budget spent, if this client is refused; else None."""
        if self._offline:
            result: tuple[int, str] | None = self.fallback.retry_after(client, session)
            return result
        with self._lock:
            seen = self._sessions.get(session)
            if seen is None or not (seen.counts or seen.since):
                return None  # no refusal in the session: the common case, no HMAC needed
            now, who = self.clock(), self._client(client)
            own, left = self._count(seen, who, now)
            if own >= self.per_client:
                return max(1, math.ceil(left)), "ballot.refusals-per-client"
            if not own:
                return None
            clients = set(seen.counts) | set(seen.since)
            counted = [self._count(seen, c, now) for c in clients]
            total = sum(min(n, self.per_client) for n, _ in counted)
            if total >= self.per_session:
                wait = min(left for n, left in counted if n)
                return max(1, math.ceil(wait)), "ballot.refusals-per-session"
        return None

    def failed(self, client: str, session: str) -> None:
        """Record a refusal: in the table for every process, and in this process's view."""
        self.fallback.failed(client, session)
        who = self._client(client)
        try:
            with self.db.write() as cur:
                cur.execute(f"INSERT INTO kaoping_ballot_refusals (session, client, at) "  # noqa: S608 -- constant
                            f"VALUES (%s, %s, {_NOW})", (session, who))
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout):
            log.warning("throttle.local_fallback", limiter="ballot-refusals")
            self._offline = True
            return
        now = self.clock()
        with self._lock:
            # no view yet: an empty one, stale at once (the next check reads the table)
            seen = self._sessions.setdefault(session, _SessionRefusals(now - self.fresh, {}))
            seen.since.setdefault(who, []).append(now)


def forget_old_refusals(db: Database, window: float) -> int:
    """Delete the refusals the window has left behind (housekeeping)."""
    with db.write() as cur:
        cur.execute(_FORGET_REFUSALS, (window,))
        return cur.rowcount
