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

from domain.ballots import Ballot, EvaluationSession
from domain.cases import AccessRecord, Case, Investigator, RefusedReads
from domain.cycle import Cycle
from domain.ledger_keys import LedgerKeys
from domain.people import Cadre, Leader
from domain.publication import ResultsNotice
from domain.subject_file import SubjectFile
from domain.units import Unit
from domain.uses import ResultUses
from projections.follower import read_page
from service.principals import Role

if TYPE_CHECKING:
    from eventsourcing.persistence import Mapper

    from service.db import Cursor

SPEC_VERSION = "1.0"
NEVER = frozenset({
    Ballot.Cast.TOPIC, Ballot.Replaced.TOPIC, SubjectFile.InspectionNoted.TOPIC,
    Case.Reported.TOPIC, Case.ReporterIdentified.TOPIC, Case.Assigned.TOPIC,
    Case.FindingRecorded.TOPIC, Case.OutcomeLinked.TOPIC, Case.Closed.TOPIC,
    AccessRecord.Recorded.TOPIC, RefusedReads.Counted.TOPIC,
    EvaluationSession.CredentialsIssued.TOPIC,
    EvaluationSession.CredentialRevoked.TOPIC, Investigator.Registered.TOPIC,
})
EVALUATORS = frozenset({Role.ORGANIZER, Role.COMMITTEE, Role.SUPERVISOR, Role.ASSESSMENT_TEAM})
EVERYONE = frozenset(Role)
AGGREGATES = (Unit, Cadre, Leader, Cycle, SubjectFile, ResultsNotice, EvaluationSession,
              LedgerKeys, ResultUses)
PERSONNEL = frozenset({Role.ORGANIZER, Role.COMMITTEE, Role.SUPERVISOR})


def audience(topic: str) -> frozenset[Role]:
    if topic in NEVER:
        return frozenset()
    if topic.startswith("kaoping/SubjectFile.") and topic != SubjectFile.Opened.TOPIC:
        return EVALUATORS
    if topic.startswith("kaoping/ResultsNotice."):  # every individual's result and grade
        return EVALUATORS
    if topic.startswith("kaoping/ResultUses."):  # personnel actions on a person
        return PERSONNEL
    return EVERYONE


def event_type(topic: str) -> str:
    """``kaoping/Unit.Registered.v1`` -> ``kaoping.unit.registered.v1`` (CloudEvents style)."""
    return topic.replace("/", ".").lower()


def _fields(cls: type[Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    skip = {"originator_id", "originator_version"}
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.name not in skip}


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
            struct = msgspec.defstruct(event_type(topic), list(_fields(value).items()))
            out[event_type(topic)] = {
                "topic": topic, "version": int(topic.rsplit(".v", 1)[1]),
                "audience": sorted(r.value for r in audience(topic)),
                "schema": msgspec.json.schema(struct),
            }
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


def _data(event: Any) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(
        {k: v for k, v in vars(event).items()
         if k not in ("originator_id", "originator_version", "timestamp", "originator_topic")})
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
        for row in rows:
            last = row.position
            if role not in audience(row.topic):
                continue
            ev = row.event
            out.append(CloudEvent(
                specversion=SPEC_VERSION, id=f"{origin}/{row.position}", source=f"/{origin}",
                type=event_type(row.topic), time=ev.timestamp.isoformat(),
                subject=str(getattr(ev, "subject", None) or row.stream_id),
                datacontenttype="application/json",
                data_schema=f"/api/v1/events/schemas/{event_type(row.topic)}",
                data=_data(ev), position=row.position, leafhash=row.leaf_hash.hex()))
            if len(out) == limit:
                break
    return out, last
