"""The injected clock: production reads the system time; tests pass a fixed or stepping one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until moved: ``advance()`` steps it."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            msg = "FixedClock needs a timezone-aware datetime"
            raise ValueError(msg)
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at += delta


# A business day (业务日期) for the acts of a load that replays a year's calendar (the demo city):
# the use cases that check "today" against a window (commitments due, the 公示 window,
# feedback dates) read it through Evaluation.today() while it is set, in this context only.
# Event timestamps, tokens and ballots keep the injected clock.
_BUSINESS_DAY: ContextVar[date | None] = ContextVar("business_day", default=None)


def business_day() -> date | None:
    """The business day set by ``on_business_day`` in this context, if any."""
    return _BUSINESS_DAY.get()


@contextmanager
def on_business_day(day: date) -> Iterator[None]:
    """Act as on ``day`` (the jurisdiction's local date) inside the block."""
    token = _BUSINESS_DAY.set(day)
    try:
        yield
    finally:
        _BUSINESS_DAY.reset(token)
