"""The published results of a cycle, as they stood at any log position.

Read from the log itself (the results notice stream, domain/publication.py), never from a read
model: the application role cannot change an event, and every version is checked against the
fingerprint it was published with before it is served. A cycle published before results
notices existed (``Cycle.Published`` v1) has its results recomputed at the publication's
position with the score function version it recorded, and checked against its fingerprint.

A notice in the second format (domain/publication.py) holds each pool's digest; the pools are
read from their own streams and each is checked against its digest in the version served.

Versions are folded once and kept in a small cache keyed by the leaf hash of the event that
made them — a leaf hash commits to its stream's whole chain, so a cached version can never be
served for a log that differs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

from domain.cycle import Cycle
from domain.errors import IntegrityFailure
from domain.publication import (
    PoolKey,
    ResultsNotice,
    ResultsPool,
    digests_fingerprint,
    pool_digest,
    pool_key,
    results_fingerprint_v1,
)
from domain.scheme import SubjectKind
from domain.subject_file import SubjectFile, pool_result
from service.ledger.envelope import ZERO_HASH, Envelope, payload_hash
from service.streams import (
    decode_rows,
    load_streams,
    project,
    replay_as_of,
    stream_leaf,
    stream_rows,
    stream_tip,
    topic_position,
)

if TYPE_CHECKING:
    from uuid import UUID

    from eventsourcing.persistence import Mapper

    from domain.scoring import PoolResult, SubjectResult
    from service.db import Cursor


class Correction(msgspec.Struct, kw_only=True):
    """更正: one correction of published results, as the notice recorded it."""

    version: int  # the results version it made (the publication is version 1)
    position: int
    leaf_hash: str  # hex
    basis: str  # review (复核), appeal (申诉) or committee
    reference: str
    reason: str
    authority: str
    notified_on: str
    actor: str
    time: str
    pools: list[str]  # "group/kind" of every corrected pool
    results_fingerprint: str


@dataclass(frozen=True)
class PublishedResults:
    """A cycle's results in one published version."""

    year: int
    version: int  # 1: as published; each correction adds one
    position: int  # where the event that made this version is in the log
    published_position: int  # where the cycle's publication is
    fingerprint: str
    score_version: str
    previous_version: int | None  # the previous cycle's version its 位次进退 was measured on
    notified_on: str
    pools: dict[PoolKey, PoolResult]
    changed_in: dict[PoolKey, int]  # the version that last changed each pool
    corrections: list[Correction] = field(default_factory=list)
    recorded: bool = True  # False: a v1 publication, its results recomputed and checked

    def results(self) -> list[PoolResult]:
        return [self.pools[k] for k in sorted(self.pools)]

    def ranks(self) -> dict[str, int]:
        return {r.subject: r.rank for p in self.pools.values() for r in p.results}

    def pool(self, group: str, kind: SubjectKind) -> PoolResult | None:
        return self.pools.get((group, kind.value))

    def result_of(self, subject: str) -> SubjectResult | None:
        for pool in self.pools.values():
            for result in pool.results:
                if result.subject == subject:
                    return result
        return None


T = TypeVar("T")


class Kept(Generic[T]):
    """A few values kept per process by the key that pins them (a leaf hash, stream heads):
    a key names one content, so a kept value is never stale, only evicted (least recently
    used first). Two threads missing the same key both make it; the last one stays."""

    def __init__(self, size: int = 32) -> None:
        self._items: OrderedDict[tuple[Any, ...], T] = OrderedDict()
        self._size, self._lock = size, threading.Lock()

    def get(self, key: tuple[Any, ...], make: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        made = make()
        with self._lock:
            self._items[key] = made
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return made

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_cache: Kept[PublishedResults] = Kept()


def clear_cache() -> None:
    """Forget every folded version (benchmarks measure the cold path with it)."""
    _cache.clear()


def published_as_of(cur: Cursor, mapper: Mapper[UUID], year: int,
                    position: int) -> PublishedResults | None:
    """The results of ``year`` in force at log position ``position`` (None: not yet
    published then). A publication and its results notice commit together: from the
    publication's position on, version 1 is in force."""
    notice = ResultsNotice.id_for(year)
    tip = stream_tip(cur, notice, position)
    if tip is not None:
        return _notice_version(cur, mapper, year, tip)
    at, published = _publication(cur, mapper, year)
    if at is None or at > position or published is None:
        return None
    if published.results_notice:  # its first event is in the publication's commit
        first = stream_leaf(cur, notice, 1)
        if first is None:
            msg = f"cycle {year} was published with a results notice that is missing"
            raise IntegrityFailure(msg, rule="results.integrity")
        return _notice_version(cur, mapper, year, first)
    published_tip = stream_tip(cur, Cycle.id_for(year), at)
    previous = published_as_of(cur, mapper, year - 1, at)
    key = ("legacy", published_tip[2] if published_tip else b"",
           None if previous is None else (previous.year, previous.version, previous.fingerprint))
    return _cache.get(key, lambda: _recompute(cur, mapper, year, at, previous))


def _notice_version(cur: Cursor, mapper: Mapper[UUID], year: int,
                    tip: tuple[int, int, bytes]) -> PublishedResults:
    return _cache.get(("notice", tip[2]), lambda: _fold(
        cur, mapper, year, ResultsNotice.id_for(year), tip[0]))


def previous_ranks(cur: Cursor, mapper: Mapper[UUID], year: int,
                   position: int) -> tuple[int | None, dict[str, int]]:
    """The previous cycle's results version in force at ``position`` and its ranks: what
    ``year``'s rank change (位次进退) is measured against."""
    previous = published_as_of(cur, mapper, year - 1, position)
    return (None, {}) if previous is None else (previous.version, previous.ranks())


def _publication(cur: Cursor, mapper: Mapper[UUID], year: int) -> tuple[int | None, Any]:
    """The position and event of the cycle's publication, if any (its stored bytes checked
    against its ledger leaf)."""
    sid = Cycle.id_for(year)
    at = topic_position(cur, sid, Cycle.Published.TOPIC)
    if at is None:
        return None, None
    rows = stream_rows(cur, sid, at + 1)
    _check_leaves(year, sid, rows[-1:], bytes(rows[-2][4]) if len(rows) > 1 else ZERO_HASH)
    return at, decode_rows(mapper, sid, rows[-1:])[0]


def _check_leaves(year: int, stream_id: UUID, rows: Sequence[tuple[Any, ...]],
                  previous: bytes) -> None:
    """Each row's stored bytes are the ones its ledger leaf commits to: results are served
    only as the log recorded them (a rewritten ledger is the signer's and verify-log's to
    catch; docs/ledger.md)."""
    for position, version, topic, state, leaf in rows:
        envelope = Envelope(int(position), stream_id, int(version), str(topic),
                            payload_hash(bytes(state)), previous)
        if envelope.leaf_hash() != bytes(leaf):
            msg = (f"cycle {year}: the stored event at position {position} ({topic}) is not "
                   "the one its ledger leaf records")
            raise IntegrityFailure(msg, rule="results.integrity")
        previous = bytes(leaf)


def _fold(cur: Cursor, mapper: Mapper[UUID], year: int, notice_id: UUID,
          up_to: int) -> PublishedResults:
    rows = stream_rows(cur, notice_id, up_to + 1)
    _check_leaves(year, notice_id, rows, ZERO_HASH)
    events = decode_rows(mapper, notice_id, rows)
    published_at, published = _publication(cur, mapper, year)
    if published_at is None:
        msg = f"cycle {year} has a results notice but no publication"
        raise IntegrityFailure(msg, rule="results.integrity")
    notice: ResultsNotice | None = None
    corrections: list[Correction] = []
    second = isinstance(events[0], ResultsNotice.IssuedByDigest)
    for row, ev in zip(rows, events, strict=True):
        if isinstance(ev, (ResultsNotice.IssuedByDigest, ResultsNotice.CorrectedByDigest)
                      ) != second:
            msg = (f"cycle {year}: results version {ev.originator_version} is not in the "
                   "notice's format")
            raise IntegrityFailure(msg, rule="results.integrity")
        notice = project_one(notice, ev)
        recorded = (digests_fingerprint(ev.digests) if second
                    else results_fingerprint_v1(notice.results()))
        if recorded != ev.results_fingerprint:
            msg = (f"cycle {year}: results version {ev.originator_version} does not match the "
                   "fingerprint it was published with")
            raise IntegrityFailure(msg, rule="results.integrity")
        if isinstance(ev, (ResultsNotice.Corrected, ResultsNotice.CorrectedByDigest)):
            changed = (ev.changed if isinstance(ev, ResultsNotice.CorrectedByDigest)
                       else [pool_digest(p) for p in ev.pools])
            corrections.append(Correction(
                version=ev.originator_version, position=int(row[0]),
                leaf_hash=bytes(row[4]).hex(), basis=ev.basis, reference=ev.reference,
                reason=ev.reason, authority=ev.authority, notified_on=ev.notified_on,
                actor=ev.actor, time=ev.timestamp.isoformat(),
                pools=[f"{d.group}/{d.kind}" for d in changed],
                results_fingerprint=ev.results_fingerprint))
    if notice is None or events[0].results_fingerprint != published.results_fingerprint:
        msg = f"cycle {year}: the results notice is not the publication's"
        raise IntegrityFailure(msg, rule="results.integrity")
    if second:
        _state_pools(cur, mapper, notice)
    return PublishedResults(
        year=year, version=notice.version, position=int(rows[-1][0]),
        published_position=published_at, fingerprint=notice.fingerprint,
        score_version=notice.score_version, previous_version=notice.previous_version,
        notified_on=notice.notified_on, pools=dict(notice.pools),
        changed_in=dict(notice.changed_in), corrections=corrections)


def _state_pools(cur: Cursor, mapper: Mapper[UUID], notice: ResultsNotice) -> None:
    """Put a second-format notice's pools in, as of its version, from their own streams (one
    query); each must match the digest the notice recorded (the notice's leaves were checked:
    a pool rewritten in its stream no longer matches)."""
    ids = {key: ResultsPool.id_for(notice.year, *key) for key in notice.digests}
    streams = load_streams(cur, mapper, list(ids.values()), 2**62)
    pools = {}
    for key, sid in ids.items():
        stream = project(streams[sid])
        pool = stream.as_of(notice.version) if isinstance(stream, ResultsPool) else None
        if pool is None:
            msg = (f"cycle {notice.year}: the published results of {key[0]}/{key[1]} are "
                   "missing from their stream")
            raise IntegrityFailure(msg, rule="results.integrity")
        pools[key] = pool
    try:
        notice.state(pools)
    except ValueError as exc:
        raise IntegrityFailure(f"cycle {notice.year}: {exc}", rule="results.integrity") from None


def project_one(notice: ResultsNotice | None, event: Any) -> ResultsNotice:
    folded = project([event]) if notice is None else event.mutate(notice)
    if not isinstance(folded, ResultsNotice):
        msg = "the results notice stream holds an event of another aggregate"
        raise IntegrityFailure(msg, rule="results.integrity")
    return folded


def _recompute(cur: Cursor, mapper: Mapper[UUID], year: int, at: int,
               previous: PublishedResults | None) -> PublishedResults:
    """A v1 publication: its results are the score function's at the publication."""
    cycle = replay_as_of(cur, mapper, Cycle.id_for(year), at)
    if not isinstance(cycle, Cycle) or cycle.scheme is None or cycle.score_version is None:
        msg = f"cycle {year}: the publication at position {at} has no scheme"
        raise IntegrityFailure(msg, rule="results.integrity")
    pools = pools_at(cur, mapper, cycle, at - 1, {} if previous is None else previous.ranks(),
                     cycle.score_version)
    if results_fingerprint_v1(pools) != cycle.results_fingerprint:
        msg = (f"cycle {year}: the results recomputed at its publication do not match the "
               "published fingerprint")
        raise IntegrityFailure(msg, rule="results.integrity")
    keyed = {pool_key(p): p for p in pools}
    return PublishedResults(
        year=year, version=1, position=at, published_position=at,
        fingerprint=cycle.results_fingerprint, score_version=cycle.score_version,
        previous_version=None if previous is None else previous.version,
        notified_on=cycle.published_on or "", pools=keyed, changed_in=dict.fromkeys(keyed, 1),
        recorded=False)


def pools_at(cur: Cursor, mapper: Mapper[UUID], cycle: Cycle, position: int,
             previous: dict[str, int], version: str) -> list[PoolResult]:
    """Every pool of ``cycle`` from its subjects' files as they were at ``position``."""
    assert cycle.scheme is not None  # noqa: S101 -- callers check
    out = []
    for group, kind in sorted({(e.group, e.kind) for e in cycle.roster}):
        ids = [SubjectFile.id_for(cycle.year, e.subject) for e in cycle.pool(group, kind)]
        streams = load_streams(cur, mapper, ids, position)
        files = [f for sid in ids if isinstance(f := project(streams[sid]), SubjectFile)]
        out.append(pool_result(cycle.scheme, group, kind, files, previous, version))
    return out


def rank_versions(cur: Cursor, mapper: Mapper[UUID],
                  year: int) -> list[tuple[int, int, dict[str, int]]]:
    """(position, version, ranks) of every published version of ``year``'s results, in log
    order: what the next cycle's 位次进退 was measured against at each point in time."""
    rows = stream_rows(cur, ResultsNotice.id_for(year), 2**62)
    first = published_as_of(cur, mapper, year, int(rows[0][0]) - 1 if rows else 2**62)
    out = [] if first is None else [(first.position, first.version, first.ranks())]
    for row in rows:  # a v1 publication is the only version in force before a notice
        version = published_as_of(cur, mapper, year, int(row[0]))
        if version is not None:
            out.append((int(row[0]), version.version, version.ranks()))
    return out
