"""The results notice (考核结果通报) of a cycle: the results as published, and each correction.

A published result is a fact. Publication records every pool's results in full, with their
fingerprint, the score function's version, the evidence heads they were computed at and the
previous cycle's results version their rank changes (位次进退) were measured against. Nothing
that happens later changes it: a sanction lifted, a review (复核) or appeal (申诉) decided, a
committee act — each moves the *working* results only, until a correction (更正) is published
with its reason, authority and basis. A correction carries the corrected pools in full and is
itself a new version of the results: version 1 is the publication, each correction adds one
(the notice stream's own version). Reads serve the version in force; evidence bundles carry
every version, and the offline verifier recomputes each from the evidence it names.

Two formats. The first (``Issued.v1``/``Corrected.v1``) recorded every pool in the notice's
own events, so the evidence of one result had to carry every subject's result in the city.
The second (``Issued.v2``/``Corrected.v2``, every cycle published since) records in the
notice only each pool's digest (SHA-256 of the pool's results) and a fingerprint over the
digests; each pool's results are stated in a stream of their own (``ResultsPool``), written in
the same commit. A bundle then carries its own pool's stream and the digests, and proves its
pool's results are the published ones without disclosing any other pool's. A notice keeps the
format it was issued in: a v1 notice is corrected in v1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec
from eventsourcing.domain import Aggregate, event

from domain.cycle import StreamHead
from domain.scheme import SubjectKind
from domain.scoring import PoolResult, SubjectResult

PoolKey = tuple[str, str]  # group, kind


def pool_key(pool: PoolResult) -> PoolKey:
    return pool.group, pool.kind.value


def results_fingerprint_v1(results: Sequence[PoolResult]) -> str:
    """The first format's fingerprint: SHA-256 (hex) of every pool's results, sorted-key JSON
    in (group, kind) order (kept to check what was published with it)."""
    ordered = sorted(results, key=pool_key)
    return hashlib.sha256(msgspec.json.encode(ordered, order="sorted")).hexdigest()


class PoolDigest(msgspec.Struct, frozen=True, kw_only=True):
    """A pool's place in the notice: its key and the SHA-256 of its results. Not salted: the
    digest of a pool of composites to two places and ranks is no secret to guess, and the
    committee's approval (审定) binds the same fingerprint the notice publishes."""

    group: str
    kind: str
    digest: str  # hex SHA-256 of the pool's results, sorted-key JSON


def pool_digest(pool: PoolResult) -> PoolDigest:
    return PoolDigest(group=pool.group, kind=pool.kind.value, digest=hashlib.sha256(
        msgspec.json.encode(pool, order="sorted")).hexdigest())


def digests_fingerprint(digests: Sequence[PoolDigest]) -> str:
    """SHA-256 (hex) of the pools' digests in (group, kind) order: the number printed on the
    notice, recorded with the publication and each correction, and approved by 审定."""
    ordered = sorted(digests, key=lambda d: (d.group, d.kind))
    return hashlib.sha256(msgspec.json.encode(ordered, order="sorted")).hexdigest()


def results_fingerprint(results: Sequence[PoolResult]) -> str:
    """The fingerprint of a set of pool results (the second format's: over their digests)."""
    return digests_fingerprint([pool_digest(p) for p in results])


class ResultsNotice(Aggregate):
    """考核结果通报: one cycle's published results and their corrections (更正)."""

    TOPIC = "kaoping/ResultsNotice"

    class Created(Aggregate.Created):
        TOPIC = "kaoping/ResultsNotice.Created"  # base only; never stored

    class Issued(Created):
        """Version 1: the results as published, written with the cycle's publication."""

        TOPIC = "kaoping/ResultsNotice.Issued.v1"
        year: int
        pools: list[PoolResult]
        results_fingerprint: str
        score_version: str
        previous_version: int | None  # the previous cycle's results version used for 位次进退
        notified_on: str
        actor: str

    class IssuedByDigest(Created):
        """Version 1 in the second format: each pool's digest; the pools are stated in their
        own streams (``ResultsPool``) in the same commit."""

        TOPIC = "kaoping/ResultsNotice.Issued.v2"
        year: int
        digests: list[PoolDigest]
        results_fingerprint: str
        score_version: str
        previous_version: int | None
        notified_on: str
        actor: str

    class CorrectedByDigest(Aggregate.Event):
        """更正 in the second format: every pool's digest in the new version, the pools that
        changed (restated in their own streams in the same commit), and why."""

        TOPIC = "kaoping/ResultsNotice.Corrected.v2"
        digests: list[PoolDigest]
        changed: list[PoolDigest]
        results_fingerprint: str
        previous_version: int | None
        heads: list[StreamHead]
        basis: str
        reference: str
        reason: str
        authority: str
        notified_on: str
        actor: str

    class Corrected(Aggregate.Event):
        """更正: the pools whose published results change, in full, and why."""

        TOPIC = "kaoping/ResultsNotice.Corrected.v1"
        pools: list[PoolResult]
        results_fingerprint: str  # of the whole new version (every pool)
        previous_version: int | None
        heads: list[StreamHead]  # the evidence heads of the corrected pools' files
        basis: str  # "review" (复核), "appeal" (申诉) or "committee" (a committee act)
        reference: str  # the decision it carries out: a subject's review, or minutes
        reason: str
        authority: str
        notified_on: str
        actor: str

    @staticmethod
    def id_for(year: int) -> UUID:
        return uuid5(NAMESPACE_URL, f"kaoping:results-notice:{year}")

    @classmethod
    def create_id(cls, year: int, **_: object) -> UUID:
        return cls.id_for(year)

    @event(Issued)
    def __init__(self, year: int, results_fingerprint: str, score_version: str,
                 previous_version: int | None, notified_on: str, actor: str,
                 pools: list[PoolResult] | None = None,
                 digests: list[PoolDigest] | None = None) -> None:
        del actor
        self.year, self.score_version = year, score_version
        self.pools: dict[PoolKey, PoolResult] = {pool_key(p): p for p in pools or []}
        # The second format (``digests``) holds no pools: ``state`` puts them in from their
        # streams, each checked against its digest.
        self.by_digest = digests is not None
        self.digests: dict[PoolKey, str] = (
            {(d.group, d.kind): d.digest for d in digests} if digests is not None
            else {k: pool_digest(p).digest for k, p in self.pools.items()})
        self.fingerprint = results_fingerprint
        self.previous_version = previous_version
        self.notified_on = notified_on
        self.changed_in: dict[PoolKey, int] = dict.fromkeys(self.digests, 1)

    @classmethod
    def issue(cls, *, year: int, pools: list[PoolResult], score_version: str,
              previous_version: int | None, notified_on: str,
              actor: str) -> tuple[ResultsNotice, list[ResultsPool]]:
        """Publish in the second format: the notice (digests) and each pool's own stream."""
        digests = [pool_digest(p) for p in sorted(pools, key=pool_key)]
        notice = cls._create(cls.IssuedByDigest, id=cls.id_for(year), year=year,
                             digests=digests, results_fingerprint=digests_fingerprint(digests),
                             score_version=score_version, previous_version=previous_version,
                             notified_on=notified_on, actor=actor)
        stated = [ResultsPool.state(year, p, 1) for p in pools]
        notice.state({pool_key(p): p for p in pools})
        return notice, stated

    def state(self, pools: dict[PoolKey, PoolResult]) -> None:
        """Put in the pools a second-format notice names (read from their streams); each must
        match its digest in this version."""
        for key, pool in pools.items():
            if self.digests.get(key) != pool_digest(pool).digest:
                msg = (f"results of {key[0]}/{key[1]} do not match their digest in results "
                       f"version {self.version} of {self.year}")
                raise ValueError(msg)
        self.pools = dict(pools)

    def correct(self, pools: list[PoolResult], heads: list[StreamHead],
                previous_version: int | None, *, basis: str, reference: str, reason: str,
                authority: str, notified_on: str, actor: str) -> list[PoolResult]:
        """更正 in the notice's own format; returns the pools to restate in their streams
        (none for the first format, which holds them in the event)."""
        if not self.by_digest:
            new = {**self.pools, **{pool_key(p): p for p in pools}}
            self._corrected(pools=pools,
                            results_fingerprint=results_fingerprint_v1(list(new.values())),
                            previous_version=previous_version, heads=heads, basis=basis,
                            reference=reference, reason=reason, authority=authority,
                            notified_on=notified_on, actor=actor)
            return []
        changed = [pool_digest(p) for p in sorted(pools, key=pool_key)]
        digests = {**self.digests, **{(d.group, d.kind): d.digest for d in changed}}
        listed = [PoolDigest(group=g, kind=k, digest=d) for (g, k), d in sorted(digests.items())]
        self._corrected_by_digest(
            digests=listed, changed=changed, results_fingerprint=digests_fingerprint(listed),
            previous_version=previous_version, heads=heads, basis=basis, reference=reference,
            reason=reason, authority=authority, notified_on=notified_on, actor=actor)
        self.pools.update({pool_key(p): p for p in pools})
        return pools

    @event(Corrected)
    def _corrected(self, pools: list[PoolResult], results_fingerprint: str,
                   previous_version: int | None, heads: list[StreamHead], basis: str,
                   reference: str, reason: str, authority: str, notified_on: str,
                   actor: str) -> None:
        for pool in pools:
            self.pools[pool_key(pool)] = pool
            self.digests[pool_key(pool)] = pool_digest(pool).digest
            self.changed_in[pool_key(pool)] = self.version + 1  # this event's version
        self.fingerprint = results_fingerprint
        self.previous_version = previous_version
        self.notified_on = notified_on

    @event(CorrectedByDigest)
    def _corrected_by_digest(self, digests: list[PoolDigest], changed: list[PoolDigest],
                             results_fingerprint: str, previous_version: int | None,
                             heads: list[StreamHead], basis: str, reference: str, reason: str,
                             authority: str, notified_on: str, actor: str) -> None:
        self.digests = {(d.group, d.kind): d.digest for d in digests}
        for d in changed:
            self.changed_in[(d.group, d.kind)] = self.version + 1
            self.pools.pop((d.group, d.kind), None)  # until ``state`` puts the new one in
        self.fingerprint = results_fingerprint
        self.previous_version = previous_version
        self.notified_on = notified_on

    def results(self) -> list[PoolResult]:
        return [self.pools[k] for k in sorted(self.pools)]

    def ranks(self) -> dict[str, int]:
        """Every subject's rank in this version (the next cycle's 位次进退 reads it)."""
        return {r.subject: r.rank for p in self.pools.values() for r in p.results}

    def result_of(self, subject: str) -> tuple[PoolResult, SubjectResult] | None:
        for pool in self.pools.values():
            for result in pool.results:
                if result.subject == subject:
                    return pool, result
        return None

    def pool(self, group: str, kind: SubjectKind) -> PoolResult | None:
        return self.pools.get((group, kind.value))


class ResultsPool(Aggregate):
    """One pool's published results (the second notice format): stated with the notice's
    version 1, restated by each correction that changes them. Its stream is what an evidence
    bundle carries for its own pool; the notice holds only the digest."""

    TOPIC = "kaoping/ResultsPool"

    class Created(Aggregate.Created):
        TOPIC = "kaoping/ResultsPool.Created"  # base only; never stored

    class Stated(Created):
        TOPIC = "kaoping/ResultsPool.Stated.v1"
        year: int
        pool: PoolResult
        notice_version: int

    class Restated(Aggregate.Event):
        TOPIC = "kaoping/ResultsPool.Restated.v1"
        pool: PoolResult
        notice_version: int

    @staticmethod
    def id_for(year: int, group: str, kind: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"kaoping:results-pool:{year}:{group}:{kind}")

    @classmethod
    def create_id(cls, year: int, pool: PoolResult, **_: object) -> UUID:
        return cls.id_for(year, pool.group, pool.kind.value)

    @event(Stated)
    def __init__(self, year: int, pool: PoolResult, notice_version: int) -> None:
        self.year = year
        self.history: list[tuple[int, PoolResult]] = [(notice_version, pool)]

    @classmethod
    def state(cls, year: int, pool: PoolResult, notice_version: int) -> ResultsPool:
        return cls(year=year, pool=pool, notice_version=notice_version)

    def restate(self, pool: PoolResult, notice_version: int) -> None:
        self._restated(pool=pool, notice_version=notice_version)

    @event(Restated)
    def _restated(self, pool: PoolResult, notice_version: int) -> None:
        self.history.append((notice_version, pool))

    def as_of(self, notice_version: int) -> PoolResult | None:
        """The pool in force in a results version (None: not stated by then)."""
        found = None
        for version, pool in self.history:
            if version <= notice_version:
                found = pool
        return found
