"""Explain, history and time travel: every number of a score card back to its events.

Everything here replays the evidence streams through the one score function (never the read
models), so it answers for any past log position as well as for now.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
import msgspec.structs
from eventsourcing.application import project_aggregate
from eventsourcing.persistence import StoredEvent

from domain.ballots import EvaluationSession
from domain.cycle import Cycle
from domain.errors import BadArgument, NotFound
from domain.scheme import Component
from domain.scoring import PoolEvidence, PoolResult, SubjectResult, score_pool
from domain.subject_file import SubjectFile
from projections.results import load_streams
from service.evidence import (
    pools_as_of,
    published_position,
    ranks_of,
    replay_as_of,
    stream_rows,
)

if TYPE_CHECKING:
    from eventsourcing.persistence import Mapper

    from service.db import Cursor

COMPONENT_OF = {
    SubjectFile.TargetsPublished.TOPIC: Component.COMMITMENTS.value,
    SubjectFile.TargetAssessed.TOPIC: Component.COMMITMENTS.value,
    SubjectFile.LeaderScored.TOPIC: Component.LEADER_REVIEW.value,
    SubjectFile.IndicatorScored.TOPIC: Component.INDICATORS.value,
    SubjectFile.InspectionScored.TOPIC: Component.INSPECTION.value,
    SubjectFile.InspectionNoted.TOPIC: Component.INSPECTION.value,
    SubjectFile.AnalysisScored.TOPIC: Component.ANALYSIS.value,
    SubjectFile.EvaluationRecorded.TOPIC: "democratic/survey",
    SubjectFile.EvaluationWithheld.TOPIC: "democratic/survey",
    SubjectFile.SanctionRecorded.TOPIC: "vetoes",
    SubjectFile.SanctionLifted.TOPIC: "vetoes",
    SubjectFile.AdjustmentProposed.TOPIC: "adjustments",
    SubjectFile.AdjustmentApproved.TOPIC: "adjustments",
    SubjectFile.CommitteeDecided.TOPIC: "grading",
    SubjectFile.ReviewRequested.TOPIC: "appeals",
    SubjectFile.ReviewDecided.TOPIC: "appeals",
    SubjectFile.Opened.TOPIC: "file",
}
_SKIP = {"originator_id", "originator_version", "originator_topic", "timestamp", "actor"}


class SourceEvent(msgspec.Struct, kw_only=True):
    """The event an input was recorded from: for a 民主测评 score -- or its absence -- the
    ballot session's close (its cut, how many ballots are on its board, the classes below
    quorum, and this subject's tally), or the session's void (reason and authority)."""

    position: int
    leaf_hash: str
    stream_id: str
    version: int
    topic: str
    facts: dict[str, Any]


class InputLine(msgspec.Struct, kw_only=True):
    """One event behind a number: where it is in the log, who, when, what."""

    position: int
    leaf_hash: str
    version: int
    topic: str
    part: str  # the component (or vetoes, adjustments, grading, appeals) it feeds
    actor: str
    time: str
    facts: dict[str, Any]  # the event's own fields (restricted notes withheld)
    source: SourceEvent | None = None  # where the input came from, when it came from an event


class ScoreCard(msgspec.Struct, kw_only=True):
    year: int
    subject: str
    as_of: int  # the log position the card is computed at
    result: SubjectResult
    weights: dict[str, Decimal]
    inputs: list[InputLine]


class Change(msgspec.Struct, kw_only=True):
    position: int
    topic: str
    actor: str
    time: str
    changed: dict[str, list[Any]]  # field -> [before, after]
    # Whose event: "self" (the subject's own file), "cycle" (the scheme, roster, phases) or
    # the code of another subject of the pool (whose scores moved this one's rank or grade).
    by: str = "self"


def head(cur: Cursor) -> int:
    cur.execute("SELECT max(position) FROM kaoping_ledger")
    row = cur.fetchone()
    return -1 if row is None or row[0] is None else int(row[0])


def position_for(cur: Cursor, as_of: str | None) -> int:
    """A log position, given as one or as an ISO time (the last checkpoint signed by then)."""
    if as_of is None or as_of == "":
        return head(cur)
    if as_of.isdigit():
        return min(int(as_of), head(cur))
    try:
        at = datetime.fromisoformat(as_of)
    except ValueError:
        msg = "as_of is a log position or an ISO 8601 time with a zone"
        raise BadArgument(msg, rule="as-of.format", field="as_of") from None
    if at.tzinfo is None:
        msg = "as_of needs a time zone (e.g. 2026-01-20T09:00:00+08:00)"
        raise BadArgument(msg, rule="as-of.format", field="as_of")
    cur.execute("SELECT size, signed_at FROM kaoping_checkpoints ORDER BY size")
    best = -1
    for size, signed_at in cur.fetchall():
        when = datetime.fromisoformat(signed_at) if isinstance(signed_at, str) else signed_at
        if when <= at:
            best = int(size) - 1
    return best


def pool_as_of(cur: Cursor, mapper: Mapper[UUID], year: int, subject: str,
               position: int) -> tuple[PoolResult, Cycle]:
    cycle = replay_as_of(cur, mapper, Cycle.id_for(year), position)
    if not isinstance(cycle, Cycle) or cycle.scheme is None:
        msg = f"cycle {year} had no scheme at position {position}"
        raise NotFound(msg, rule="as-of.cycle", field="as_of")
    entry = cycle.entry(subject)
    ids = [SubjectFile.id_for(year, e.subject) for e in cycle.pool(entry.group, entry.kind)]
    streams = load_streams(cur, mapper, ids, position)  # one query for the pool
    files: list[SubjectFile] = []
    for sid in ids:
        if streams[sid]:
            aggregate: Any = project_aggregate(None, streams[sid])
            if isinstance(aggregate, SubjectFile):
                files.append(aggregate)
    if not any(f.subject == subject for f in files):
        msg = f"{subject} had no file at position {position}"
        raise NotFound(msg, rule="as-of.file", field="as_of")
    previous: dict[str, int] = {}
    before = published_position(cur, year - 1)
    if before is not None and before <= position:
        previous = _published_ranks(cur, mapper, year - 1, before)
    evidence = PoolEvidence(group=entry.group, kind=entry.kind,
                            subjects=[f.evidence(cycle.scheme) for f in files],
                            previous_ranks={f.subject: previous[f.subject] for f in files
                                            if f.subject in previous})
    return score_pool(cycle.scheme, evidence), cycle


_RANKS: dict[tuple[str, int, int], dict[str, int]] = {}


def _published_ranks(cur: Cursor, mapper: Mapper[UUID], year: int,
                     published_at: int) -> dict[str, int]:
    """A published cycle's ranks. The log is append-only and the publication's position is
    fixed, so they never change: computed once per store and kept (keyed by both)."""
    key = (cur.engine + ":" + _store_id(cur), year, published_at)
    if key not in _RANKS:
        _RANKS[key] = ranks_of(pools_as_of(cur, mapper, year, published_at - 1, {}))
    return _RANKS[key]


def _store_id(cur: Cursor) -> str:
    """Tells stores apart in one process (tests run many): the log's first leaf hash."""
    cur.execute("SELECT leaf_hash FROM kaoping_ledger WHERE position = 0")
    row = cur.fetchone()
    return "" if row is None else bytes(row[0]).hex()


def _lines(cur: Cursor, mapper: Mapper[UUID], year: int, subject: str, position: int,
           restricted_ok: bool) -> list[InputLine]:
    sid = SubjectFile.id_for(year, subject)
    out = []
    for pos, version, topic, state, leaf in stream_rows(cur, sid, position + 1):
        ev: Any = mapper.to_domain_event(StoredEvent(sid, int(version), str(topic),
                                                      bytes(state)))
        facts = {k: v for k, v in vars(ev).items() if k not in _SKIP}
        if topic == SubjectFile.InspectionNoted.TOPIC and not restricted_ok:
            facts = {"activity": facts.get("activity"), "notes": "(restricted)"}
        source = None
        if topic == SubjectFile.EvaluationRecorded.TOPIC and ev.closed_version is not None:
            source = _session_event(cur, mapper, ev.session, ev.closed_version, subject)
        elif topic == SubjectFile.EvaluationWithheld.TOPIC:
            source = _session_event(cur, mapper, ev.session, ev.source_version, subject)
        out.append(InputLine(position=int(pos), leaf_hash=bytes(leaf).hex(),
                             version=int(version), topic=str(topic),
                             part=COMPONENT_OF.get(str(topic), "other"),
                             actor=str(getattr(ev, "actor", "")),
                             time=ev.timestamp.isoformat(), facts=facts, source=source))
    return out


def _session_event(cur: Cursor, mapper: Mapper[UUID], code: str, version: int,
                   subject: str) -> SourceEvent | None:
    """The Closed (or Voided) event of ballot session ``code``, at ``version`` of its stream."""
    sid = EvaluationSession.id_for(code)
    row = next((r for r in stream_rows(cur, sid, 2**62) if int(r[1]) == version), None)
    if row is None:
        return None
    position, _, topic, state, leaf = row
    ev: Any = mapper.to_domain_event(StoredEvent(sid, version, str(topic), bytes(state)))
    if isinstance(ev, EvaluationSession.Voided):
        facts: dict[str, Any] = {"session": code, "voided": True, "reason": ev.reason,
                                 "authority": ev.authority}
    elif isinstance(ev, EvaluationSession.Closed):
        tally = next((t for t in ev.result.subjects if t.subject == subject), None)
        facts = {"session": code, "cut_position": ev.cut_position,
                 "ballots_on_board": len(ev.trackers),
                 "quorum_failed": [msgspec.structs.asdict(f) for f in ev.result.quorum_failed],
                 "tally": msgspec.structs.asdict(tally) if tally else None}
    else:
        return None
    return SourceEvent(position=int(position), leaf_hash=bytes(leaf).hex(), stream_id=str(sid),
                       version=version, topic=str(topic), facts=facts)


def explain(cur: Cursor, mapper: Mapper[UUID], year: int, subject: str, as_of: str | None,
            *, restricted_ok: bool) -> ScoreCard:
    position = position_for(cur, as_of)
    pool, cycle = pool_as_of(cur, mapper, year, subject, position)
    entry = cycle.entry(subject)
    assert cycle.scheme is not None  # noqa: S101 -- pool_as_of checked it
    rule = cycle.scheme.rule_for(entry.group, entry.kind)
    return ScoreCard(year=year, subject=subject, as_of=position,
                     result=pool.for_subject(subject),
                     weights={c.value: w for c, w in rule.weights.items()},
                     inputs=_lines(cur, mapper, year, subject, position, restricted_ok))


class Diff(msgspec.Struct, kw_only=True):
    year: int
    subject: str
    from_position: int
    to_position: int
    changed: dict[str, list[Any]]  # score-card field -> [at from, at to]


def diff(cur: Cursor, mapper: Mapper[UUID], year: int, subject: str, start: str,
         end: str) -> Diff:
    """What differs on a score card between two as-of points."""
    a, b = position_for(cur, start), position_for(cur, end)
    before = pool_as_of(cur, mapper, year, subject, a)[0].for_subject(subject)
    after = pool_as_of(cur, mapper, year, subject, b)[0].for_subject(subject)
    fields = [f for f in SubjectResult.__struct_fields__ if f not in ("subject", "code")]
    changed = {f: [getattr(before, f), getattr(after, f)] for f in fields
               if getattr(before, f) != getattr(after, f)}
    return Diff(year=year, subject=subject, from_position=a, to_position=b, changed=changed)


_CARD_FIELDS = ("composite", "rank", "proposed_grade", "final_grade", "no_grade_reason")


def history(cur: Cursor, mapper: Mapper[UUID], year: int, subject: str) -> list[Change]:
    """Every change to the subject's score card (composite, rank, grades) in log order, each
    with the event that made it: the subject's own file events (always listed, even when they
    change nothing), and any event of the cycle or of another subject of the pool that moved
    this subject's card (a rival's adjustment can change my rank or quota-bound grade).

    One pass over the pool's evidence streams, applying each event to in-memory aggregates
    and rescoring the pool after it: cost follows the pool's evidence, not the log."""
    cycle_id, own = Cycle.id_for(year), SubjectFile.id_for(year, subject)
    now: Any = replay_as_of(cur, mapper, cycle_id, head(cur))
    if not isinstance(now, Cycle):
        msg = f"no cycle {year}"
        raise NotFound(msg, rule="cycle.exists")
    entry = now.entry(subject)
    by = {cycle_id: "cycle", **{SubjectFile.id_for(year, e.subject): e.subject
                                for e in now.pool(entry.group, entry.kind)}}
    rows = sorted((int(pos), sid, int(v), str(t), bytes(st))
                  for sid in by for pos, v, t, st, _ in stream_rows(cur, sid, 2**62))
    published = published_position(cur, year - 1)
    previous = {} if published is None else _published_ranks(cur, mapper, year - 1, published)
    aggregates: dict[UUID, Any] = {}
    evidence: dict[tuple[UUID, int, int], Any] = {}  # (file, its version, cycle version)
    before: dict[str, Any] = dict.fromkeys(_CARD_FIELDS)
    changes = []
    for pos, sid, version, topic, state in rows:
        ev: Any = mapper.to_domain_event(StoredEvent(sid, version, topic, state))
        aggregates[sid] = project_aggregate(aggregates.get(sid), [ev])
        cycle = aggregates.get(cycle_id)
        after = before
        files = [(fid, f) for e in cycle.pool(entry.group, entry.kind)
                 if isinstance(f := aggregates.get(fid := SubjectFile.id_for(year, e.subject)),
                               SubjectFile)] if isinstance(cycle, Cycle) else []
        if isinstance(cycle, Cycle) and cycle.scheme is not None and any(
                fid == own for fid, _ in files):
            for fid, f in files:
                key = (fid, f.version, cycle.version)
                if key not in evidence:
                    evidence[key] = f.evidence(cycle.scheme)
            counted = published is not None and published <= pos
            result = score_pool(cycle.scheme, PoolEvidence(
                group=entry.group, kind=entry.kind,
                subjects=[evidence[(fid, f.version, cycle.version)] for fid, f in files],
                previous_ranks={f.subject: previous[f.subject] for _, f in files
                                if counted and f.subject in previous})).for_subject(subject)
            after = {f: getattr(result, f) for f in _CARD_FIELDS}
        changed = {f: [before[f], after[f]] for f in _CARD_FIELDS if before[f] != after[f]}
        if sid == own or changed:
            changes.append(Change(position=pos, topic=topic, actor=str(getattr(ev, "actor", "")),
                                  time=ev.timestamp.isoformat(), changed=changed,
                                  by="self" if sid == own else by[sid]))
        before = after
    return changes


def render(card: ScoreCard) -> str:
    """The score card as plain text, for a terminal."""
    r = card.result
    out = [f"{card.subject} — cycle {card.year}, as of log position {card.as_of}",
           f"composite {r.composite}   rank {r.rank}"
           + (f" (last year {r.previous_rank}, change {r.rank_change:+d})"
              if r.rank_change is not None else "")
           + f"   grade {r.final_grade or '—'}"
           + (f" (no grade: {r.no_grade_reason})" if r.no_grade_reason else "")
           + ("  [committee]" if r.decided_by_committee else ""), ""]
    for component, value in r.components.items():
        weight = card.weights.get(component.value, Decimal(0))
        out.append(f"  {component.value:<14} {value:>7.2f} × {weight}"
                   + ("   (missing)" if component in r.missing else ""))
    if r.gate_failed:
        out.append("  satisfaction gate failed: gated components count zero")
    if r.vetoes_applied:
        out.append(f"  vetoes: {', '.join(r.vetoes_applied)}")
    out += ["", "events:"]
    for line in card.inputs:
        facts = ", ".join(f"{k}={v}" for k, v in line.facts.items())
        out.append(f"  #{line.position:<7} v{line.version:<3} {line.part:<16} {line.time[:19]}"
                   f"  {line.actor}  {line.topic.split('/')[-1]}  {facts}")
        out.append(f"           leaf {line.leaf_hash}")
        if line.source is not None:
            out.append(_render_source(line.source))
    return "\n".join(out)


def _render_source(source: SourceEvent) -> str:
    facts = source.facts
    head = (f"           from #{source.position} {source.topic.split('/')[-1]} of "
            f"{facts['session']}: ")
    if facts.get("voided"):
        return (f"{head}voided ({facts['reason']}; {facts['authority']}), its score withdrawn; "
                f"leaf {source.leaf_hash}")
    tally = facts.get("tally") or {}
    failed = "; ".join(f"{f['rater_class']} {f['present']}/{f['eligible']} (needs "
                       f"{f['required']})" for f in facts.get("quorum_failed") or [])
    outcome = (f"quorum failed: {failed}, no result" if failed else
               f"{tally.get('valid_ballots')} valid for this subject, score {tally.get('score')}"
               + (f" (withheld: {tally.get('withheld_reason')})" if tally.get("withheld")
                  else ""))
    return (f"{head}{facts['ballots_on_board']} ballots on the board, {outcome}; "
            f"leaf {source.leaf_hash}")
