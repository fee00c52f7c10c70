"""Explain, history and time travel: every number of a score card back to its events.

Everything here replays the evidence streams through the one score function (never the read
models), so it answers for any past log position as well as for now.
"""

from __future__ import annotations

import base64
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
import msgspec.structs
from eventsourcing.persistence import StoredEvent

from domain.ballots import EvaluationSession
from domain.cycle import Cycle
from domain.errors import BadArgument, NotFound
from domain.publication import ResultsNotice, ResultsPool
from domain.scheme import Component
from domain.scoring import (
    SCORE_FUNCTION_VERSION,
    PoolEvidence,
    PoolResult,
    SubjectResult,
    score_pool,
)
from domain.subject_file import SubjectFile, pool_result
from domain.team_review import TeamAnalysis
from projections.follower import head_position
from service.commitments import CardTarget, card_targets
from service.published import (
    Correction,
    PublishedResults,
    previous_ranks,
    published_as_of,
    rank_versions,
)
from service.streams import (
    END,
    load_streams,
    project,
    project_events,
    replay_as_of,
    stream_leaf,
    stream_rows,
    topic_position,
)

if TYPE_CHECKING:
    from eventsourcing.persistence import Mapper

    from service.db import Cursor

COMPONENT_OF = {
    SubjectFile.TargetsPublished.TOPIC: Component.COMMITMENTS.value,
    SubjectFile.TargetAssessed.TOPIC: Component.COMMITMENTS.value,
    SubjectFile.CommitmentsCredited.TOPIC: Component.COMMITMENTS.value,
    SubjectFile.ItemSatisfactionRecorded.TOPIC: Component.COMMITMENTS.value,
    SubjectFile.LeaderScored.TOPIC: Component.LEADER_REVIEW.value,
    SubjectFile.IndicatorScored.TOPIC: Component.INDICATORS.value,
    SubjectFile.InspectionScored.TOPIC: Component.INSPECTION.value,
    SubjectFile.InspectionNoted.TOPIC: Component.INSPECTION.value,
    SubjectFile.AnalysisScored.TOPIC: Component.ANALYSIS.value,
    SubjectFile.MemberScored.TOPIC: Component.ANALYSIS.value,
    SubjectFile.TeamAssigned.TOPIC: Component.ANALYSIS.value,
    SubjectFile.FindingRecorded.TOPIC: Component.INSPECTION.value,
    SubjectFile.DocumentSubmitted.TOPIC: "documents",
    SubjectFile.Remarked.TOPIC: "remark",
    SubjectFile.EvaluationRecorded.TOPIC: "democratic/survey",
    SubjectFile.EvaluationWithheld.TOPIC: "democratic/survey",
    SubjectFile.SanctionRecorded.TOPIC: "vetoes",
    SubjectFile.SanctionLifted.TOPIC: "vetoes",
    SubjectFile.AdjustmentProposed.TOPIC: "adjustments",
    SubjectFile.AdjustmentApproved.TOPIC: "adjustments",
    SubjectFile.CommitteeDecided.TOPIC: "grading",
    SubjectFile.ReviewRequested.TOPIC: "appeals",
    SubjectFile.ReviewDecided.TOPIC: "appeals",
    SubjectFile.ObjectionLodged.TOPIC: "notice",  # 公示异议
    SubjectFile.ObjectionDecided.TOPIC: "grading",  # upheld: a committee decision on the grade
    SubjectFile.Opened.TOPIC: "file",
}
_SKIP = {"originator_id", "originator_version", "originator_topic", "timestamp", "actor"}


class SourceEvent(msgspec.Struct, kw_only=True):
    """The event an input was recorded from: for a 民主测评 score -- or its absence -- the
    ballot session's close (its cut, how many ballots are on its board, the classes below
    quorum, and this subject's tally), or the session's void (reason and authority)."""

    position: int
    leaf_hash: str  # hex
    leaf_hash_base64: str  # the same bytes in base64, as the ledger routes and receipts give it
    stream_id: str
    version: int
    topic: str
    facts: dict[str, Any]


class InputLine(msgspec.Struct, kw_only=True):
    """One event behind a number: where it is in the log, who, when, what."""

    position: int
    leaf_hash: str  # hex
    leaf_hash_base64: str  # the same bytes in base64, as the ledger routes and receipts give it
    version: int
    topic: str
    part: str  # the component (or vetoes, adjustments, grading, appeals) it feeds
    actor: str
    time: str
    facts: dict[str, Any]  # the event's own fields (restricted notes withheld)
    source: SourceEvent | None = None  # where the input came from, when it came from an event


class PublishedCard(msgspec.Struct, kw_only=True):
    """What was published for the subject, in the version in force at the card's position."""

    version: int  # results version: 1 as published, then one more per correction (更正)
    position: int  # the event that made this version
    result: SubjectResult
    differs: bool  # the evidence at the card's position gives another result (pending)
    corrections: list[Correction]  # every correction of the subject's pool up to then


class ScoreCard(msgspec.Struct, kw_only=True):
    year: int
    subject: str
    as_of: int  # the log position the card is computed at
    result: SubjectResult  # what the evidence gives at that position (the working result)
    weights: dict[str, Decimal]
    inputs: list[InputLine]
    published: PublishedCard | None = None  # None before publication
    # 责任承诺考实: a cadre's targets (责任到人); a team's own and 共绩 targets, each once
    commitments: list[CardTarget] = []
    # 集体议绩: how the team's member scores make the analysis component (member, dimension,
    # weight, rule); None for a subject whose analysis was entered directly.
    analysis: TeamAnalysis | None = None
    remark: str | None = None  # 评语: the team's qualitative conclusion


class Change(msgspec.Struct, kw_only=True):
    position: int
    topic: str
    actor: str
    time: str
    changed: dict[str, list[Any]]  # field -> [before, after]
    # Whose event: "self" (the subject's own file), "cycle" (the scheme, roster, phases) or
    # the code of another subject of the pool (whose scores moved this one's rank or grade).
    by: str = "self"


NAMED_POINTS = {"announcement": Cycle.Announced.TOPIC, "scoring": Cycle.ScoringOpened.TOPIC,
                "seal": Cycle.Sealed.TOPIC, "publication": Cycle.Published.TOPIC}


def position_for(cur: Cursor, as_of: str | None, year: int | None = None) -> int:
    """A log position: given as one, as an ISO time with a zone (the last checkpoint signed
    by then), or as a named point of the cycle (``announcement``, ``scoring``, ``seal``,
    ``publication``, ``correction-N``: the event that made results version N)."""
    if as_of is None or as_of == "":
        return head_position(cur)
    if as_of.isdigit():
        return min(int(as_of), head_position(cur))
    if year is not None and (as_of in NAMED_POINTS or as_of.startswith("correction-")):
        return _named_point(cur, year, as_of)
    try:
        at = datetime.fromisoformat(as_of)
    except ValueError:
        names = ", ".join([*NAMED_POINTS, "correction-N"])
        msg = f"as_of is a log position, an ISO 8601 time with a zone, or one of {names}"
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


def _named_point(cur: Cursor, year: int, name: str) -> int:
    if name == "publication":  # its commit ends with the results notice's first event
        issued = stream_leaf(cur, ResultsNotice.id_for(year), 1)
        if issued is not None:
            return issued[0]
    if name in NAMED_POINTS:
        found = topic_position(cur, Cycle.id_for(year), NAMED_POINTS[name])
        if found is None:
            msg = f"cycle {year} has no {name} yet"
            raise NotFound(msg, rule="as-of.point", field="as_of")
        return found
    number = name.removeprefix("correction-")
    rows = stream_rows(cur, ResultsNotice.id_for(year), END)
    if not number.isdigit() or not 2 <= int(number) <= len(rows):
        msg = f"cycle {year} has no results version {number} (correction-2 is the first)"
        raise NotFound(msg, rule="as-of.point", field="as_of")
    return int(rows[int(number) - 1][0])


def pool_as_of(cur: Cursor, mapper: Mapper[UUID], year: int, subject: str,
               position: int) -> tuple[PoolResult, Cycle]:
    cycle = replay_as_of(cur, mapper, Cycle.id_for(year), position)
    if not isinstance(cycle, Cycle) or cycle.scheme is None:
        msg = f"cycle {year} had no scheme at position {position}"
        raise NotFound(msg, rule="as-of.cycle", field="as_of")
    entry = cycle.entry(subject)
    ids = [SubjectFile.id_for(year, e.subject) for e in cycle.pool(entry.group, entry.kind)]
    streams = load_streams(cur, mapper, ids, position)  # one query for the pool
    files = [f for sid in ids if isinstance(f := project(streams[sid]), SubjectFile)]
    if not any(f.subject == subject for f in files):
        msg = f"{subject} had no file at position {position}"
        raise NotFound(msg, rule="as-of.file", field="as_of")
    _, previous = previous_ranks(cur, mapper, year, position)
    return pool_result(cycle.scheme, entry.group, entry.kind, files, previous,
                       cycle.scoring_version(SCORE_FUNCTION_VERSION)), cycle


def published_card(cur: Cursor, mapper: Mapper[UUID], year: int, subject: str,
                   position: int, working: SubjectResult) -> PublishedCard | None:
    """The subject's published result in force at ``position``, and its pool's corrections."""
    published: PublishedResults | None = published_as_of(cur, mapper, year, position)
    mine = None if published is None else published.result_of(subject)
    if published is None or mine is None:
        return None
    pool = next(f"{p.group}/{p.kind.value}" for p in published.pools.values()
                if any(r.subject == subject for r in p.results))
    return PublishedCard(version=published.version, position=published.position, result=mine,
                         differs=mine != working,
                         corrections=[c for c in published.corrections if pool in c.pools])


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
        if topic == SubjectFile.FindingRecorded.TOPIC and not restricted_ok:
            facts = {"activity": facts.get("activity"), "summary": "(restricted)"}
        source = None
        if topic == SubjectFile.EvaluationRecorded.TOPIC and ev.closed_version is not None:
            source = _session_event(cur, mapper, ev.session, ev.closed_version, subject)
        elif topic == SubjectFile.EvaluationWithheld.TOPIC:
            source = _session_event(cur, mapper, ev.session, ev.source_version, subject)
        out.append(InputLine(position=int(pos), leaf_hash=bytes(leaf).hex(),
                                  leaf_hash_base64=base64.b64encode(bytes(leaf)).decode(),
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
    return SourceEvent(position=int(position), leaf_hash=bytes(leaf).hex(),
                       leaf_hash_base64=base64.b64encode(bytes(leaf)).decode(), stream_id=str(sid),
                       version=version, topic=str(topic), facts=facts)


def explain(cur: Cursor, mapper: Mapper[UUID], year: int, subject: str, as_of: str | None,
            *, restricted_ok: bool) -> ScoreCard:
    position = position_for(cur, as_of, year)
    pool, cycle = pool_as_of(cur, mapper, year, subject, position)
    entry = cycle.entry(subject)
    assert cycle.scheme is not None  # noqa: S101 -- pool_as_of checked it
    rule = cycle.scheme.rule_for(entry.group, entry.kind)
    working = pool.for_subject(subject)
    file = replay_as_of(cur, mapper, SubjectFile.id_for(year, subject), position)
    team = file.team_analysis(cycle.scheme) if isinstance(file, SubjectFile) else None
    return ScoreCard(year=year, subject=subject, as_of=position, result=working,
                     weights={c.value: w for c, w in rule.weights.items()},
                     inputs=_lines(cur, mapper, year, subject, position, restricted_ok),
                     published=published_card(cur, mapper, year, subject, position, working),
                     commitments=card_targets(cur, mapper, cycle, subject, position),
                     analysis=team, remark=getattr(file, "remark", None))


class Diff(msgspec.Struct, kw_only=True):
    year: int
    subject: str
    from_position: int
    to_position: int
    changed: dict[str, list[Any]]  # score-card field -> [at from, at to]


def diff(cur: Cursor, mapper: Mapper[UUID], year: int, subject: str, start: str,
         end: str) -> Diff:
    """What differs on a score card between two as-of points."""
    a, b = position_for(cur, start, year), position_for(cur, end, year)
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
    change nothing), any event of the cycle or of another subject of the pool that moved
    this subject's card (a rival's adjustment can change my rank or quota-bound grade), a new
    version of last year's results (``by`` "results-<year>": it moves 位次进退), and each
    publication or correction of this subject's published result (``by`` "published"; its
    fields are prefixed ``published_``).

    One pass over the pool's evidence streams, applying each event to in-memory aggregates
    and rescoring the pool after it: cost follows the pool's evidence, not the log."""
    cycle_id, own = Cycle.id_for(year), SubjectFile.id_for(year, subject)
    now: Any = replay_as_of(cur, mapper, cycle_id, END)
    if not isinstance(now, Cycle):
        msg = f"no cycle {year}"
        raise NotFound(msg, rule="cycle.exists")
    entry = now.entry(subject)
    notice, last_year = ResultsNotice.id_for(year), ResultsNotice.id_for(year - 1)
    # The second notice format states the pool's published results in a stream of its own.
    stated = ResultsPool.id_for(year, entry.group, entry.kind.value)
    by = {cycle_id: "cycle", notice: "published", stated: "published",
          last_year: f"results-{year - 1}",
          **{SubjectFile.id_for(year, e.subject): e.subject
             for e in now.pool(entry.group, entry.kind)}}
    rows = sorted((int(pos), sid, int(v), str(t), bytes(st))
                  for sid in by for pos, v, t, st, _ in stream_rows(cur, sid, END))
    versions = rank_versions(cur, mapper, year - 1)
    aggregates: dict[UUID, Any] = {}
    evidence: dict[tuple[UUID, int, int], Any] = {}  # (file, its version, cycle version)
    before: dict[str, Any] = dict.fromkeys(_CARD_FIELDS)
    shown: dict[str, Any] = dict.fromkeys(_CARD_FIELDS)  # the published card
    changes = []
    acted_by = ""
    for pos, sid, version, topic, state in rows:
        ev: Any = mapper.to_domain_event(StoredEvent(sid, version, topic, state))
        aggregates[sid] = project_events(aggregates.get(sid), [ev])
        if sid == notice:  # a pool stated in its own stream was stated by the notice's act
            acted_by = str(ev.actor)
        if sid in (notice, stated):
            if isinstance(aggregates.get(stated), ResultsPool):
                pool = aggregates[stated].history[-1][1]
                mine = (pool, pool.for_subject(subject))
            else:  # the first format: the notice holds every pool
                mine = aggregates[notice].result_of(subject)
            now_shown = {f: None if mine is None else getattr(mine[1], f) for f in _CARD_FIELDS}
            changed = {f"published_{f}": [shown[f], now_shown[f]] for f in _CARD_FIELDS
                       if shown[f] != now_shown[f]}
            if changed:
                changes.append(Change(position=pos, topic=topic, actor=acted_by,
                                      time=ev.timestamp.isoformat(), changed=changed,
                                      by="published"))
            shown = now_shown
            continue
        after = _card_at(aggregates, cycle_id, entry, year, own, evidence,
                         _ranks_at(versions, pos)) or before
        changed = {f: [before[f], after[f]] for f in _CARD_FIELDS if before[f] != after[f]}
        if sid == own or changed:
            changes.append(Change(position=pos, topic=topic, actor=str(getattr(ev, "actor", "")),
                                  time=ev.timestamp.isoformat(), changed=changed,
                                  by="self" if sid == own else by[sid]))
        before = after
    return changes


def _ranks_at(versions: list[tuple[int, int, dict[str, int]]], position: int) -> dict[str, int]:
    """Last year's ranks in force at ``position`` (the latest version published by then)."""
    found: dict[str, int] = {}
    for at, _, ranks in versions:
        if at <= position:
            found = ranks
    return found


def _card_at(aggregates: dict[UUID, Any], cycle_id: UUID, entry: Any, year: int, own: UUID,
             evidence: dict[tuple[UUID, int, int], Any],
             previous: dict[str, int]) -> dict[str, Any] | None:
    """The subject's card fields with the aggregates as they are (None: no card yet)."""
    cycle = aggregates.get(cycle_id)
    if not isinstance(cycle, Cycle) or cycle.scheme is None:
        return None
    files = [(fid, f) for e in cycle.pool(entry.group, entry.kind)
             if isinstance(f := aggregates.get(fid := SubjectFile.id_for(year, e.subject)),
                           SubjectFile)]
    if not any(fid == own for fid, _ in files):
        return None
    for fid, f in files:
        key = (fid, f.version, cycle.version)
        if key not in evidence:
            evidence[key] = f.evidence(cycle.scheme)
    result = score_pool(cycle.scheme, PoolEvidence(
        group=entry.group, kind=entry.kind,
        subjects=[evidence[(fid, f.version, cycle.version)] for fid, f in files],
        previous_ranks={f.subject: previous[f.subject] for _, f in files
                        if f.subject in previous}),
        version=cycle.scoring_version(SCORE_FUNCTION_VERSION)).for_subject(entry.subject)
    return {f: getattr(result, f) for f in _CARD_FIELDS}


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
    gate = r.satisfaction_gate
    if r.gate_failed:
        rate = f" (satisfaction {gate.satisfaction} < {gate.threshold})" if (
            gate is not None and gate.satisfaction is not None) else ""
        out.append(f"  satisfaction gate failed{rate}: gated components count zero")
    if gate is not None:
        out += [f"  not counted as 实绩: {item.item} (群众满意度 {item.satisfaction} < "
                f"{gate.threshold})" for item in gate.excluded_items]
    if r.vetoes_applied:
        out.append(f"  vetoes: {', '.join(r.vetoes_applied)}")
    if card.commitments:
        out += ["", "commitments (责任承诺):"]
    for t in card.commitments:
        done = "not assessed" if t.achieved is None else f"achieved {t.achieved}, " \
               f"completion {t.completion}"
        rated = "" if t.satisfaction is None else f"; 群众满意度 {t.satisfaction}" + (
            "" if t.counted else " — not counted as 实绩")
        out.append(f"  {t.unit}/{t.code} {t.measure} {t.direction} {t.target_value} "
                   f"{t.unit_of_measure}; credit {t.credit}; {done}{rated}")
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
