"""The event feed for other systems: the log in order, as CloudEvents 1.0, filtered by role.

Confidential material never leaves through the feed: ballots (the session's close event carries
the tallies and the board), interview notes, report-line cases, reporter identities, the access
record and credential hashes. The inputs that move a result (scores, sanctions, adjustments,
committee decisions) go only to the roles that run or supervise the evaluation. Every event
type's data has a published JSON Schema (``dataschema``), listed in the catalogue.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import StoredEvent

from domain.ballots import Ballot, EvaluationSession
from domain.cases import AccessRecord, Case, Investigator, RefusedReads
from domain.commitments import UnitCommitments
from domain.cycle import Cycle
from domain.feedback import Feedback
from domain.ledger_keys import LedgerKeys
from domain.people import Cadre, Leader
from domain.publication import ResultsNotice, ResultsPool
from domain.subject_file import SubjectFile
from domain.units import Unit
from domain.uses import ResultUses
from projections.follower import read_page
from service.db import as_uuid
from service.principals import Role

if TYPE_CHECKING:
    from eventsourcing.persistence import Mapper

    from service.db import Cursor

SPEC_VERSION = "1.0"
NEVER = frozenset({
    Ballot.Cast.TOPIC, Ballot.Replaced.TOPIC, SubjectFile.InspectionNoted.TOPIC,
    SubjectFile.FindingRecorded.TOPIC,
    Case.Reported.TOPIC, Case.ReporterIdentified.TOPIC, Case.Assigned.TOPIC,
    Case.FindingRecorded.TOPIC, Case.OutcomeLinked.TOPIC, Case.Closed.TOPIC,
    AccessRecord.Recorded.TOPIC, RefusedReads.Counted.TOPIC,
    EvaluationSession.CredentialsIssued.TOPIC,
    EvaluationSession.CredentialRevoked.TOPIC, Investigator.Registered.TOPIC,
})
EVALUATORS = frozenset({Role.ORGANIZER, Role.COMMITTEE, Role.SUPERVISOR, Role.ASSESSMENT_TEAM})
EVERYONE = frozenset(Role)
AGGREGATES = (Unit, Cadre, Leader, Cycle, SubjectFile, ResultsNotice, ResultsPool,
              EvaluationSession,
              LedgerKeys, ResultUses, UnitCommitments, Feedback)
PERSONNEL = frozenset({Role.ORGANIZER, Role.COMMITTEE, Role.SUPERVISOR})


# Events that carry scores or results: the results notice and the pools' published results
# (every individual's result and grade, by prefix, above), what feeds a score (achievements,
# target ratings), and a ballot session's close (every subject's 民主测评 tally and score).
FOR_EVALUATORS = frozenset({UnitCommitments.AchievementAssessed.TOPIC,
                            UnitCommitments.TargetRated.TOPIC, EvaluationSession.Closed.TOPIC})


# Fields of an event that only some of its readers receive. A cycle's seal and publication
# record the head (stream id, version, leaf hash) of every subject's file; a file's stream id
# is computable from its year and subject, and a sanction adds an event to it, so a file's
# version points at who was sanctioned: the heads go only to the roles that receive the files'
# own events. Everyone else gets the event without them (its schema has them optional).
RESTRICTED_FIELDS: dict[str, dict[str, frozenset[Role]]] = {
    Cycle.Sealed.TOPIC: {"heads": EVALUATORS},
    Cycle.Published.TOPIC: {"heads": EVALUATORS},
}


def audience(topic: str) -> frozenset[Role]:
    if topic in NEVER:
        return frozenset()
    if topic.startswith("kaoping/SubjectFile.") and topic != SubjectFile.Opened.TOPIC:
        return EVALUATORS
    if topic.startswith(("kaoping/ResultUses.", "kaoping/Feedback.")):  # about persons
        return PERSONNEL
    if topic.startswith(("kaoping/ResultsNotice.", "kaoping/ResultsPool.")) or (
            topic in FOR_EVALUATORS):
        return EVALUATORS
    return EVERYONE


def withheld(topic: str, role: Role) -> frozenset[str]:
    """The fields of a ``topic`` event that ``role`` does not receive (RESTRICTED_FIELDS)."""
    return frozenset(name for name, roles in RESTRICTED_FIELDS.get(topic, {}).items()
                     if role not in roles)


def event_type(topic: str) -> str:
    """``kaoping/Unit.Registered.v1`` -> ``kaoping.unit.registered.v1`` (CloudEvents style)."""
    return topic.replace("/", ".").lower()


# Kept out of ``data``: the stream id and version are the envelope's (``position``,
# ``leafhash``), the timestamp is the CloudEvent's ``time``, the topic its ``type``.
ENVELOPE_FIELDS = frozenset({"originator_id", "originator_version", "timestamp",
                             "originator_topic"})
# A subject file's stream id is a hash of (year, subject): its events say which file they are
# in, so that other systems never have to map stream UUIDs back to subjects.
SUBJECT_FILE_FIELDS: dict[str, Any] = {"year": int, "subject": str}
# How the CloudEvent ``subject`` names each kind of stream, from the stream's first event.
STREAM_PREFIX = {"Unit": "unit", "Cadre": "cadre", "Leader": "leader", "Cycle": "cycle",
                 "EvaluationSession": "session", "ResultsNotice": "results-notice",
                 "LedgerKeys": "ledger-keys", "Feedback": "feedback"}


def _is_subject_file(topic: str) -> bool:
    return topic.startswith("kaoping/SubjectFile.")


def _fields(cls: type[Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    out = {f.name: hints[f.name] for f in dataclasses.fields(cls)
           if f.name not in ENVELOPE_FIELDS}
    if _is_subject_file(getattr(cls, "TOPIC", "")):
        out = {**SUBJECT_FILE_FIELDS, **out}
    return out


@functools.cache
def catalogue() -> dict[str, dict[str, Any]]:
    """Every event type other systems may receive, with the JSON Schema of its data."""
    out: dict[str, dict[str, Any]] = {}
    for aggregate in AGGREGATES:
        for value in vars(aggregate).values():
            topic = getattr(value, "TOPIC", None)
            if not isinstance(value, type) or not isinstance(topic, str):
                continue
            if not topic.endswith(tuple(f".v{n}" for n in range(1, 10))) or not audience(topic):
                continue
            restricted = RESTRICTED_FIELDS.get(topic, {})
            struct = msgspec.defstruct(event_type(topic), [
                (name, kind | msgspec.UnsetType, msgspec.UNSET) if name in restricted
                else (name, kind) for name, kind in _fields(value).items()], kw_only=True)
            out[event_type(topic)] = {
                "topic": topic, "version": int(topic.rsplit(".v", 1)[1]),
                "audience": sorted(r.value for r in audience(topic)),
                "schema": msgspec.json.schema(struct),
            }
            if restricted:  # the fields some of the audience do not receive: who does
                out[event_type(topic)]["restricted_fields"] = {
                    name: sorted(r.value for r in roles) for name, roles in restricted.items()}
    return dict(sorted(out.items()))


class CloudEvent(msgspec.Struct, kw_only=True, rename={"data_schema": "dataschema"}):
    specversion: str
    id: str
    source: str
    type: str
    time: str
    subject: str
    datacontenttype: str
    data_schema: str
    data: dict[str, Any]
    position: int  # the log position (ledger leaf index): the feed's cursor
    leafhash: str  # hex: check it with /api/v1/ledger/proofs/inclusion


def _data(event: Any, stream: StreamName | None, withheld: frozenset[str] = frozenset(),
          ) -> dict[str, Any]:
    fields = {k: v for k, v in vars(event).items()
              if k not in ENVELOPE_FIELDS and k not in withheld}
    if stream is not None and stream.year is not None:  # a subject file
        fields = {"year": stream.year, "subject": stream.code, **fields}
    out: dict[str, Any] = msgspec.to_builtins(fields)
    return out


class StreamName(msgspec.Struct, frozen=True):
    code: str  # ``team:T02``, ``cadre:C00001``, ``unit:T02``, ``cycle:2025``, ``session:…``
    year: int | None = None  # a subject file's cycle


def _name(first: Any, topic: str) -> StreamName | None:
    if _is_subject_file(topic) or topic.startswith("kaoping/ResultUses."):
        return StreamName(str(first.subject), int(first.year))  # a subject's, in one cycle
    if topic.startswith("kaoping/UnitCommitments."):  # one unit's, in one cycle
        return StreamName(f"commitments:{first.year}:{first.unit}")
    if topic.startswith("kaoping/ResultsPool."):  # one pool's published results
        return StreamName(f"results-pool:{first.year}:{first.pool.group}:"
                          f"{first.pool.kind.value}")
    prefix = STREAM_PREFIX.get(topic.removeprefix("kaoping/").split(".", 1)[0])
    definition = getattr(first, "definition", None)
    for value in (getattr(first, "code", None), getattr(first, "year", None),
                  getattr(definition, "code", None), getattr(first, "origin", None)):
        if prefix and value is not None:
            return StreamName(f"{prefix}:{value}")
    return None


def stream_names(cur: Cursor, mapper: Mapper[UUID],
                 stream_ids: set[UUID]) -> dict[UUID, StreamName]:
    """Each stream's readable name, from its first event (one query per 400 streams)."""
    out: dict[UUID, StreamName] = {}
    ids = sorted(stream_ids)
    for i in range(0, len(ids), 400):
        chunk = ids[i:i + 400]
        marks = ", ".join(["%s"] * len(chunk))
        cur.execute("SELECT originator_id, topic, state FROM kaoping_events "  # noqa: S608
                    f"WHERE originator_version = 1 AND originator_id IN ({marks})", chunk)
        for o, t, s in cur.fetchall():
            sid = as_uuid(o)
            first = mapper.to_domain_event(StoredEvent(sid, 1, str(t), bytes(s)))
            name = _name(first, str(t))
            if name is not None:
                out[sid] = name
    return out


def page(cur: Cursor, mapper: Mapper[UUID], role: Role, origin: str, after: int,
         limit: int, *, batch: int = 500) -> tuple[list[CloudEvent], int]:
    """Up to ``limit`` visible events after position ``after``; and the position read up to
    (the next cursor: invisible events are skipped, never hidden gaps in the cursor)."""
    out: list[CloudEvent] = []
    last = after
    while len(out) < limit:
        rows = read_page(cur, last, batch, mapper)
        if not rows:
            break
        names = stream_names(cur, mapper, {r.stream_id for r in rows if role in audience(r.topic)})
        for row in rows:
            last = row.position
            if role not in audience(row.topic):
                continue
            ev, name = row.event, names.get(row.stream_id)
            out.append(CloudEvent(
                specversion=SPEC_VERSION, id=f"{origin}/{row.position}", source=f"/{origin}",
                type=event_type(row.topic), time=ev.timestamp.isoformat(),
                subject=name.code if name else str(row.stream_id),
                datacontenttype="application/json",
                data_schema=f"/api/v1/events/schemas/{event_type(row.topic)}",
                data=_data(ev, name, withheld(row.topic, role)), position=row.position,
                leafhash=row.leaf_hash.hex()))
            if len(out) == limit:
                break
    return out, last
