"""The one event store: an eventsourcing Application whose recorders write ledger leaves.

Leaves need the events' notification ids, so they are written after the insert, inside the
same transaction and while the library's table lock is held: in ``_fetch_ids_after_insert_events``
on PostgreSQL (``_insert_events`` runs before the lock there) and in ``_insert_events`` on SQLite
(whose single writer connection serialises the whole transaction). Reading the next position
under that lock keeps leaf indices dense and gap-free across processes.

``save(..., receipt=list, after_append=callable)``: the recorder fills ``receipt`` with the
leaves it wrote and calls ``after_append(cursor, leaves)`` in the same transaction (the
idempotency store completes its record there).
"""

from __future__ import annotations

import getpass
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from copy import deepcopy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import Application, Repository
from eventsourcing.persistence import (
    InterfaceError,
    Mapper,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import Environment, EnvType, retry
from psycopg.conninfo import conninfo_to_dict
from psycopg.sql import SQL, Identifier

from service.db import Cursor, PostgresCursor
from service.db import SQLiteCursor as OurSQLiteCursor
from service.ledger.envelope import ZERO_HASH, Envelope, payload_hash
from service.mapper import MsgspecMapper, NoTranscoder
from service.settings import Settings
from service.streams import project_events

if TYPE_CHECKING:
    from service.ledger.guard import LedgerGuard

AfterAppend = Callable[[Cursor, "list[Leaf]"], None]


@dataclass(frozen=True, slots=True)
class Leaf:
    """An event's place in the ledger: its public position and leaf hash."""

    position: int
    notification_id: int
    stream_id: UUID
    stream_version: int
    topic: str
    leaf_hash: bytes


class LedgerIntegrityError(RuntimeError):
    """The log cannot be extended: an event's predecessor has no leaf."""


def _as_uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def append_leaves(
    cur: Cursor, stored_events: Sequence[StoredEvent], notification_ids: Sequence[int],
    next_position: int | None = None, guard: LedgerGuard | None = None,
) -> list[Leaf]:
    """Compute and insert the leaves of a batch; the caller holds the log's write lock. The
    guard refuses positions below the last signed checkpoint (a rolled-back store)."""
    if next_position is None:
        cur.execute("SELECT max(position) FROM kaoping_ledger")
        row = cur.fetchone()
        next_position = 0 if row is None or row[0] is None else int(row[0]) + 1
    if guard is not None:
        guard.admit(cur, next_position)
    nxt = next_position
    previous: dict[tuple[UUID, int], bytes] = {}
    wanted = [
        (_as_uuid(s.originator_id), s.originator_version - 1)
        for s in stored_events
        if s.originator_version > 1
    ]
    if wanted:
        pairs = ", ".join(["(%s, %s)"] * len(wanted))
        cur.execute(
            "SELECT stream_id, stream_version, leaf_hash FROM kaoping_ledger "  # noqa: S608 -- placeholders only
            f"WHERE (stream_id, stream_version) IN ({pairs})",
            [v for pair in wanted for v in pair],
        )
        for sid, version, digest in cur.fetchall():
            previous[(_as_uuid(sid), int(version))] = bytes(digest)
    leaves: list[Leaf] = []
    for offset, (stored, nid) in enumerate(zip(stored_events, notification_ids, strict=True)):
        sid = _as_uuid(stored.originator_id)
        version = stored.originator_version
        if version == 1:
            prev = ZERO_HASH
        elif (sid, version - 1) in previous:
            prev = previous[(sid, version - 1)]
        else:
            msg = f"stream {sid} version {version - 1} has no ledger leaf; refusing to append"
            raise LedgerIntegrityError(msg)
        envelope = Envelope(nxt + offset, sid, version, stored.topic,
                            payload_hash(stored.state), prev)
        leaf = Leaf(nxt + offset, nid, sid, version, stored.topic, envelope.leaf_hash())
        previous[(sid, version)] = leaf.leaf_hash
        leaves.append(leaf)
    _insert_leaves(cur, leaves)
    return leaves


def _insert_leaves(cur: Cursor, leaves: list[Leaf]) -> None:
    if cur.engine == "postgres" and len(leaves) == 1:
        # One leaf (a single-event save, the commonest write): plain parameters in binary;
        # dumping one-element arrays cost more than the leaf itself (bench/ledger.py).
        lf = leaves[0]
        cur.execute(
            "INSERT INTO kaoping_ledger (position, notification_id, stream_id, stream_version, "
            "leaf_hash) VALUES (%b, %b, %b, %b, %b)",
            (lf.position, lf.notification_id, lf.stream_id, lf.stream_version, lf.leaf_hash))
        return
    if cur.engine == "postgres":
        # One statement with binary column arrays: far cheaper per row than executemany in
        # the library's pipeline, and than text arrays (bench/ledger.py measures it).
        cur.execute(
            "INSERT INTO kaoping_ledger (position, notification_id, stream_id, stream_version, "
            "leaf_hash) SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::uuid[], "
            "%b::bigint[], %b::bytea[])",
            ([lf.position for lf in leaves], [lf.notification_id for lf in leaves],
             [lf.stream_id for lf in leaves], [lf.stream_version for lf in leaves],
             [lf.leaf_hash for lf in leaves]))
        return
    cur.executemany(
        "INSERT INTO kaoping_ledger (position, notification_id, stream_id, stream_version, "
        "leaf_hash) VALUES (%s, %s, %s, %s, %s)",
        [(lf.position, lf.notification_id, lf.stream_id, lf.stream_version, lf.leaf_hash)
         for lf in leaves],
    )


def _after_insert(cur: Cursor, stored: Sequence[StoredEvent], ids: Sequence[int],
                  kwargs: dict[str, Any], next_position: int | None = None,
                  guard: LedgerGuard | None = None) -> None:
    leaves = append_leaves(cur, stored, ids, next_position, guard)
    after: AfterAppend | None = kwargs.get("after_append")
    if after is not None:
        after(cur, leaves)
    receipt: list[Leaf] | None = kwargs.get("receipt")
    if receipt is not None:
        receipt[:] = leaves


class PostgresLedgerRecorder(PostgresApplicationRecorder):
    ledger_guard: LedgerGuard | None = None  # set by Services (service/ledger/guard.py)

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        # The batch goes in as four binary column arrays, not the library's array of its
        # composite row type: psycopg dumps the composite as text, field by field, which cost
        # more per event than the ledger's leaf (bench/ledger.py; group-commit-notes).
        # The ledger's head comes back with the inserted ids, in the same round trip: the
        # table lock is already held when the INSERT runs, so no other writer can move it.
        self.insert_events_statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id, (SELECT max(position) FROM kaoping_ledger) AS "
            "kaoping_head").format(schema=Identifier(self.datastore.schema),
                                   table=Identifier(self.events_table_name))
        # One event (the commonest save): plain binary parameters, not one-element arrays.
        self.insert_event_statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "VALUES (%b, %b, %b, %b) RETURNING notification_id, (SELECT max(position) FROM "
            "kaoping_ledger) AS kaoping_head").format(schema=Identifier(self.datastore.schema),
                                                     table=Identifier(self.events_table_name))

    def _insert_stored_events(self, curs: Any, stored_events: Sequence[StoredEvent],
                              **kwargs: Any) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        if len(stored_events) == 1:
            one = stored_events[0]
            curs.execute(self.insert_event_statement, (
                _as_uuid(one.originator_id), one.originator_version, one.topic, one.state),
                prepare=True)
            return
        curs.execute(self.insert_events_statement, (
            [_as_uuid(s.originator_id) for s in stored_events],
            [s.originator_version for s in stored_events],
            [s.topic for s in stored_events], [s.state for s in stored_events]), prepare=True)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # The library's version catches any exception raised after the insert and re-raises
        # it only after its transaction block has exited normally -- which COMMITs. An error in
        # our ledger hook would then leave events without leaves. Here the exception leaves
        # the transaction block (ROLLBACK) and is re-raised after the pipeline has closed.
        if self.datastore.enable_db_functions:
            msg = "POSTGRES_ENABLE_DB_FUNCTIONS drops the table lock; it is never supported"
            raise ProgrammingError(msg)
        exc: Exception | None = None
        ids: Sequence[int] | None = None
        with self.datastore.get_connection() as conn:  # maps psycopg errors to the library's
            with conn.pipeline() as pipeline:
                try:
                    with conn.transaction():
                        with conn.cursor() as curs:
                            self._insert_events(curs, stored_events, **kwargs)
                        if stored_events:
                            with conn.cursor() as curs:
                                self._insert_stored_events(curs, stored_events, **kwargs)
                                pipeline.sync()
                                ids = self._fetch_ids_after_insert_events(
                                    curs, stored_events, **kwargs)
                except Exception as e:  # noqa: BLE001 -- re-raised below, outside the pipeline
                    exc = e
            if exc is not None:
                raise exc
        return ids

    def _fetch_ids_after_insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        rows = curs.fetchall()
        if len(rows) != len(stored_events):
            msg = f"inserted {len(stored_events)} events but got {len(rows)} ids back"
            raise ProgrammingError(msg)
        ids = [row["notification_id"] for row in rows]
        head = rows[0]["kaoping_head"] if rows else None
        _after_insert(PostgresCursor(curs), stored_events, ids, kwargs,
                      next_position=0 if head is None else int(head) + 1,
                      guard=self.ledger_guard)
        return ids


class SQLiteLedgerRecorder(SQLiteApplicationRecorder):
    ledger_guard: LedgerGuard | None = None  # set by Services (service/ledger/guard.py)

    def __init__(self, datastore: Any, events_table_name: str = "kaoping_events") -> None:
        super().__init__(datastore, events_table_name)

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs) or []
        _after_insert(OurSQLiteCursor(c), stored_events, ids, kwargs,
                      guard=self.ledger_guard)
        return ids


# The connection parameters the library's environment names; any other parameter of the URL is
# handed to its pool by KaopingPostgresFactory.
_LIBRARY_CONNINFO = frozenset({"dbname", "host", "port", "user", "password"})


class KaopingPostgresFactory(PostgresFactory):
    """The library's PostgreSQL factory, whose pool also gets the URL's other parameters
    (``CONNINFO_EXTRA``, JSON) before it first connects — above all
    ``target_session_attrs=read-write`` in a multi-host URL, which makes every connection find
    the primary, at start and after a failover (docs/operations.md, pg_auto_failover). The
    library's settings name only the database, hosts, ports, user and password; our own pool
    gets the whole URL."""

    CONNINFO_EXTRA = "CONNINFO_EXTRA"

    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        extra = json.loads(self.env.get(self.CONNINFO_EXTRA) or "{}")
        if extra:
            kwargs = self.datastore.pool.kwargs
            assert isinstance(kwargs, dict)  # noqa: S101 -- the library passes a dict
            kwargs.update(extra)


def library_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing settings, built from ours alone."""
    env = {"CREATE_TABLE": "n"}
    if settings.engine == "sqlite":
        env |= {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(settings.sqlite_path),
            "SQLITE_LOCK_TIMEOUT": "30",
            "APPLICATION_RECORDER_TOPIC": "service.store:SQLiteLedgerRecorder",
        }
        return env
    info = conninfo_to_dict(settings.database_url)
    env |= {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(info.get("dbname", "")),
        "POSTGRES_HOST": str(info.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(info.get("port", "5432")),
        "POSTGRES_USER": str(info.get("user") or getpass.getuser()),
        "POSTGRES_PASSWORD": str(info.get("password", "")),
        "POSTGRES_POOL_SIZE": str(settings.db_pool_size),
        "POSTGRES_MAX_OVERFLOW": str(settings.db_pool_size),
        "POSTGRES_LOCK_TIMEOUT": "5",
        "APPLICATION_RECORDER_TOPIC": "service.store:PostgresLedgerRecorder",
    }
    extra = {k: v for k, v in info.items() if k not in _LIBRARY_CONNINFO}
    if extra:
        env |= {"PERSISTENCE_MODULE": "service.store:KaopingPostgresFactory",
                KaopingPostgresFactory.CONNINFO_EXTRA: json.dumps(extra, sort_keys=True)}
    return env


class ProjectingRepository(Repository[UUID]):
    """The library's repository, folding events with ``project_events`` by default."""

    def get(self, aggregate_id: UUID, *, version: int | None = None,
            projector_func: Any = project_events, fastforward_skipping: bool = False,
            deepcopy_from_cache: bool = True) -> Any:
        return super().get(aggregate_id, version=version, projector_func=projector_func,
                           fastforward_skipping=fastforward_skipping,
                           deepcopy_from_cache=deepcopy_from_cache)


def _project_onto_copy(aggregate: Any, events: Iterable[Any]) -> Any:
    """``project_events`` onto a copy when there is something to apply: what a kept
    aggregate was handed out as never changes under its reader."""
    new = list(events)
    if aggregate is None or not new:
        return project_events(aggregate, new)
    return project_events(deepcopy(aggregate), new)


class KeptRepository(ProjectingRepository):
    """A process's kept aggregates, handed out for reading without a copy and fast-forwarded
    copy-on-write: the events a read finds are applied to a copy, which then replaces the
    kept one (unless a newer one was kept meanwhile), so a reader holding an aggregate never
    sees it change partway through an update, and a read of an unchanged aggregate copies
    nothing. (The library fast-forwards the cached object in place, which is safe only with
    ``deepcopy_from_cache``: a copy per read.)"""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keep = threading.Lock()

    def get(self, aggregate_id: UUID, *, version: int | None = None,
            projector_func: Any = project_events, fastforward_skipping: bool = False,
            deepcopy_from_cache: bool = True) -> Any:
        if version is not None or self.cache is None:
            return super().get(aggregate_id, version=version)
        got = super().get(aggregate_id, projector_func=_project_onto_copy,
                          fastforward_skipping=fastforward_skipping, deepcopy_from_cache=False)
        with self._keep:
            try:
                kept = self.cache.get(aggregate_id)
            except KeyError:
                kept = None
            if kept is not got and (kept is None or kept.version < got.version):
                self.cache.put(aggregate_id, got)
        return got


class EventStore(Application[UUID]):
    """考评's single log: one event table, one order, one ledger."""

    name = "Kaoping"

    def construct_repository(self) -> Repository[UUID]:
        return ProjectingRepository(event_store=self.events, snapshot_store=self.snapshots)

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        # Never read os.environ: settings come from ours only (see service.settings).
        return Environment(name, dict(env or {}))

    def construct_mapper(self) -> Mapper[UUID]:
        return MsgspecMapper(transcoder=NoTranscoder())


def open_event_store(settings: Settings) -> EventStore:
    return EventStore(env=library_env(settings))
