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


def results_fingerprint(results: Sequence[PoolResult]) -> str:
    """SHA-256 (hex) of every pool's results, sorted-key JSON in (group, kind) order: the
    number printed on the notice, and recorded with the publication and each correction."""
    ordered = sorted(results, key=pool_key)
    return hashlib.sha256(msgspec.json.encode(ordered, order="sorted")).hexdigest()


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
    def __init__(self, year: int, pools: list[PoolResult], results_fingerprint: str,
                 score_version: str, previous_version: int | None, notified_on: str,
                 actor: str) -> None:
        self.year, self.score_version = year, score_version
        self.pools: dict[PoolKey, PoolResult] = {pool_key(p): p for p in pools}
        self.fingerprint = results_fingerprint
        self.previous_version = previous_version
        self.notified_on = notified_on
        self.changed_in: dict[PoolKey, int] = dict.fromkeys(self.pools, 1)

    def correct(self, pools: list[PoolResult], heads: list[StreamHead],
                previous_version: int | None, *, basis: str, reference: str, reason: str,
                authority: str, notified_on: str, actor: str) -> None:
        new = {**self.pools, **{pool_key(p): p for p in pools}}
        self._corrected(pools=pools, results_fingerprint=results_fingerprint(list(new.values())),
                        previous_version=previous_version, heads=heads, basis=basis,
                        reference=reference, reason=reason, authority=authority,
                        notified_on=notified_on, actor=actor)

    @event(Corrected)
    def _corrected(self, pools: list[PoolResult], results_fingerprint: str,
                   previous_version: int | None, heads: list[StreamHead], basis: str,
                   reference: str, reason: str, authority: str, notified_on: str,
                   actor: str) -> None:
        for pool in pools:
            self.pools[pool_key(pool)] = pool
            self.changed_in[pool_key(pool)] = self.version + 1  # this event's version
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
