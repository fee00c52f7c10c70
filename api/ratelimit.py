"""Throttling: refused ballot casts per client and session; every request per principal.

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


class FailureLimiter:
    def __init__(self, *, per_client: int = 20, per_session: int = 200,
                 window: float = 60.0) -> None:
        self.per_client, self.per_session, self.window = per_client, per_session, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

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

    def retry_after(self, client: str, session: str) -> int | None:
        """Seconds to wait if this client or session is over its limit, else None."""
        now = time.monotonic()
        with self._lock:
            over = (self._count(f"c:{client}:{session}", now) >= self.per_client
                    or self._count(f"s:{session}", now) >= self.per_session)
        return int(self.window) if over else None

    def failed(self, client: str, session: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (f"c:{client}:{session}", f"s:{session}"):
                self._hits.setdefault(key, deque()).append(now)


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
