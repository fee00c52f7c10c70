"""Counts of events per type: the smallest read model, proving the follower end to end."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from projections.follower import LoggedEvent
    from service.db import Cursor


class EventCounts:
    name: str = "event_counts.v1"
    tables: tuple[str, ...] = ("rm_event_counts",)

    def apply(self, cur: Cursor, events: Sequence[LoggedEvent]) -> None:
        counts = Counter(e.topic for e in events)
        last = {e.topic: e.position for e in events}
        cur.executemany(
            "INSERT INTO rm_event_counts (topic, events, last_position) VALUES (%s, %s, %s) "
            "ON CONFLICT (topic) DO UPDATE SET events = rm_event_counts.events + excluded.events, "
            "last_position = excluded.last_position",
            [(topic, n, last[topic]) for topic, n in sorted(counts.items())],
        )


def read_counts(cur: Cursor) -> dict[str, int]:
    cur.execute("SELECT topic, events FROM rm_event_counts ORDER BY topic")
    return {str(t): int(n) for t, n in cur.fetchall()}
