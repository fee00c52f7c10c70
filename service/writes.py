"""What a write returns, and how a failed save is told apart from a version conflict."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg.errors

if TYPE_CHECKING:
    from service.store import AfterAppend, EventStore, Leaf


@dataclass(frozen=True)
class Written:
    """The stream a command wrote to, its version after the write, and the ledger leaves."""

    stream_id: UUID
    version: int
    leaves: list[Leaf] = field(default_factory=list)


def is_version_conflict(exc: BaseException) -> bool:
    """True when a save failed on the events' primary key (stream id, version), not on another
    constraint such as the ledger's (group-commit-notes pitfall 2)."""
    cause = exc.__cause__ or exc
    if isinstance(cause, psycopg.errors.UniqueViolation):
        return cause.diag.constraint_name == "kaoping_events_pkey"
    if isinstance(cause, sqlite3.IntegrityError):
        return "kaoping_events.originator_id" in str(cause)
    return False


def save(store: EventStore, *aggregates: Any, after_append: AfterAppend | None = None,
         stream_id: UUID) -> Written:
    leaves: list[Leaf] = []
    store.save(*aggregates, receipt=leaves, after_append=after_append)
    version = max((lf.stream_version for lf in leaves if lf.stream_id == stream_id), default=0)
    return Written(stream_id, version, leaves)
