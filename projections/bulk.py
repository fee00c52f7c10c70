"""Building a read model from zero without its indexes, then indexing it once (PostgreSQL).

A read model caught up from position -1 over a long log (a new read model, one reset and
rebuilt) inserts every row into every index one at a time; ``rm_units``' primary key is on
random ids, so each insert touches a random page. Copying rows into the bare table and building
the indexes once at the end does the same work in a sort: 1,000,000 units copied by hand in
3.4 s instead of 7.1-8.0 s. In a rebuild on 2 cores it pays only for large tables (the index
inserts it saves ran on the other core while the follower decoded; the build runs alone):
hence ``projection_bulk_min_events`` (service/settings.py has the measurements).

A read model opts in with two attributes:

- ``bulk_tables``: its tables whose indexes may be dropped while it is built from zero;
- ``index_topics``: the topics whose ``apply`` needs those indexes (a rename updates a row by
  its key: without the index each update would scan the table). A page holding one of them
  has the indexes built first.

The follower (``projections/follower.py``) defers them only when the read model is at -1, its
tables are empty and at least ``bulk_min_events`` events are to be read; it builds them in a
transaction of their own once the page that reaches the head has committed (so the keys'
exclusive lock lasts a moment, not the rest of the page), or inside a page that needs them.
The deferral is recorded in ``kaoping_deferred_indexes`` in the same transaction as the first
page, so after a crash the next follower finds it and builds them when it reaches the head;
any follower finishes a deferral on a read model's tables, whether its code opts in or not.
SQLite: not used (a table's own PRIMARY KEY and UNIQUE constraints cannot be dropped there);
the read model's rows are the same either way, only the time differs.

The DDL is done by two functions owned by the owner role (the application role has none),
which act only on the tables a migration listed in ``kaoping_bulk_tables``, only on an empty
one, and refuse one whose indexes a round trip would not keep whole (migration 0033).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from projections.follower import LoggedEvent
    from service.db import Cursor


# How long the follower waits for a lock on a read model's table to drop or build its indexes.
# A reader holding the table (a long report, pg_dump) would otherwise make it wait, and every
# new reader would queue behind it; past this it loads with the indexes, or builds them later.
LOCK_TIMEOUT = "2s"


@contextlib.contextmanager
def lock_timeout(cur: Cursor) -> Iterator[None]:
    """``LOCK_TIMEOUT`` for the statements inside, then the session's own again. (After an
    error the transaction, or the savepoint the caller rolls back to, undoes it.)"""
    cur.execute("SELECT set_config('lock_timeout', %s, true)", (LOCK_TIMEOUT,))
    yield
    cur.execute("SET LOCAL lock_timeout TO DEFAULT")


def bulk_tables(projection: object) -> tuple[str, ...]:
    return tuple(getattr(projection, "bulk_tables", ()))


def needs_indexes(projection: object, events: Sequence[LoggedEvent]) -> bool:
    """Whether applying ``events`` needs the read model's indexes (a rename, say)."""
    topics: frozenset[str] = getattr(projection, "index_topics", frozenset())
    return bool(topics) and any(e.topic in topics for e in events)


def deferred(cur: Cursor) -> set[str]:
    """Tables whose indexes are deferred now (committed, or in this transaction)."""
    cur.execute("SELECT DISTINCT table_name FROM kaoping_deferred_indexes")
    return {str(t) for (t,) in cur.fetchall()}


def empty(cur: Cursor, table: str) -> bool:
    cur.execute(f"SELECT NOT EXISTS (SELECT 1 FROM public.{table})")  # noqa: S608 -- name from code
    row = cur.fetchone()
    return bool(row and row[0])


def defer(cur: Cursor, tables: Iterable[str]) -> None:
    for table in tables:
        cur.execute("SELECT kaoping_defer_indexes(%s)", (table,))


def restore(cur: Cursor, tables: Iterable[str]) -> None:
    for table in tables:
        cur.execute("SELECT kaoping_restore_indexes(%s)", (table,))
