"""Throttling: refused ballot casts per client and session; requests per principal, and per
client address for anonymous callers (public session reads, the ballot page, casting).

Written by hand because Litestar's RateLimitMiddleware counts every request (valid ballots
included) and keys on the client address in a store; here only *refusals* count, and the
client address lives in memory for the window alone — it is never logged or stored.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any, Protocol

Network = IPv4Network | IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """``KAOPING_TRUSTED_PROXIES``: comma-separated addresses or CIDRs (ValueError if bad)."""
    return tuple(ip_network(part.strip(), strict=False) for part in text.split(",")
                 if part.strip())


def _key(ip: IPv4Address | IPv6Address) -> str:
    # One IPv6 subscriber holds a whole /64: count it as one client, or it has 2**64 budgets.
    if isinstance(ip, IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(IPv6Network((ip, 64), strict=False))
    return str(ip)


def client_address(scope: Any, trusted: tuple[Network, ...]) -> str:
    """Who the client is, for throttling: the TCP peer, unless the peer is a configured proxy
    (``KAOPING_TRUSTED_PROXIES``); then the X-Forwarded-For hops are read from the right, each
    trusted proxy skipped, and the first address not a trusted proxy is the client. Anyone can
    write X-Forwarded-For, so from any other peer the header is ignored; a malformed hop ends
    the walk at the last address a trusted proxy vouched for."""
    peer = scope.get("client")
    host = str(peer[0]) if peer else "?"
    try:
        ip = ip_address(host)
    except ValueError:
        return host
    if not any(ip in net for net in trusted):
        return _key(ip)
    hops = [hop.strip() for name, value in scope.get("headers", ())
            if name.lower() == b"x-forwarded-for"
            for hop in value.decode("latin-1").split(",")]
    for hop in reversed(hops):
        try:
            ip = ip_address(hop)
        except ValueError:
            break
        if not any(ip in net for net in trusted):
            break
    return _key(ip)


class Limiter(Protocol):
    """A request budget: ``PrincipalLimiter`` (this process) or ``service.throttle.
    SharedLimiter`` (every API process, through PostgreSQL)."""

    blocking: bool  # take() makes a round trip: call it from a worker thread

    def leased(self, principal: str) -> bool: ...

    def take(self, principal: str) -> int | None: ...


class FailureLimiter:
    """Refused ballot casts (wrong or revoked credentials), counted in a sliding window.

    Each client has its own budget per session (``per_client``). The session has a budget too
    (``per_session``), which only catches guessing spread over many clients: each client adds
    at most ``per_client`` refusals to it, so one client alone can never exhaust it; and when
    it is exhausted, only clients with a refusal of their own in the window are refused, so a
    voter who has made no mistake is never locked out of the session by others' guessing.
    """

    def __init__(self, *, per_client: int = 20, per_session: int = 200, window: float = 60.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.per_client, self.per_session, self.window = per_client, per_session, window
        self.monotonic = monotonic
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    blocking = False  # in memory: never a round trip

    def stale(self, session: str) -> bool:
        """Whether ``refresh`` must run before a check (never: the counts are all here)."""
        return False

    def refresh(self, session: str) -> None:
        """Nothing to read: this process holds every count."""

    def _count(self, key: str, now: float) -> int:
        hits = self._hits.get(key)
        if hits is None:
            return 0
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return 0
        return len(hits)

    def retry_after(self, client: str, session: str) -> tuple[int, str] | None:
        """Seconds to wait and the budget spent, if this client is refused; else None."""
        now = self.monotonic()
        with self._lock:
            own = self._count(f"c:{client}:{session}", now)
            if own >= self.per_client:
                return self._wait(f"c:{client}:{session}", now), "ballot.refusals-per-client"
            if own and self._count(f"s:{session}", now) >= self.per_session:
                return self._wait(f"s:{session}", now), "ballot.refusals-per-session"
        return None

    def _wait(self, key: str, now: float) -> int:
        return max(1, math.ceil(self._hits[key][0] + self.window - now))

    def failed(self, client: str, session: str) -> None:
        now = self.monotonic()
        with self._lock:
            own = self._hits.setdefault(f"c:{client}:{session}", deque())
            own.append(now)
            if self._count(f"c:{client}:{session}", now) <= self.per_client:
                self._hits.setdefault(f"s:{session}", deque()).append(now)


class PrincipalLimiter:
    """A token bucket per authenticated principal (API key or person): ``rate`` requests a
    second on average, bursts up to ``burst``. In memory, per process: a deployment of N API
    processes allows N times the rate, which the operations guide states. Hand-written for the
    same reason as above: Litestar's RateLimitMiddleware keys on the client address, not on
    the principal the guard resolves after it.
    """

    def __init__(self, *, rate: float, burst: int,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.monotonic = rate, burst, monotonic
        self._buckets: dict[str, tuple[float, float]] = {}  # principal -> (tokens, at)
        self._lock = threading.Lock()

    blocking = False  # in memory: take() is cheap enough for the event loop

    def leased(self, principal: str) -> bool:
        """No leases here: every check is take()."""
        return False

    def take(self, principal: str) -> int | None:
        """Spend a token; return None, or the whole seconds to wait when the bucket is empty."""
        now = self.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(principal, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens < 1:
                self._buckets[principal] = (tokens, now)
                return max(1, math.ceil((1 - tokens) / self.rate))
            self._buckets[principal] = (tokens - 1, now)
            if len(self._buckets) > 100_000:  # forget idle principals (full buckets)
                self._buckets = {k: v for k, v in self._buckets.items()
                                 if v[0] + (now - v[1]) * self.rate < self.burst}
            return None
