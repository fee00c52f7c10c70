"""Throttling credential guessing: refused casts are counted per client and per session.

Written by hand because Litestar's RateLimitMiddleware counts every request (valid ballots
included) and keys on the client address in a store; here only *refusals* count, and the
client address lives in memory for the window alone — it is never logged or stored.
"""

from __future__ import annotations

import threading
import time
from collections import deque


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
