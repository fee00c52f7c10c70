"""/api/v1/cycles — the assessment cycle: scheme, roster, phases, grading, results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Annotated, Any, Literal

import msgspec
from anyio import to_thread
from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from api.auth import SECURITY, current_principal, optional_principal
from api.mechanisms import (
    INT64,
    decode_cursor,
    etag,
    expected_version,
    is_replay,
    next_page,
    strict_body,
    wait_for_projection,
)
from api.openapi import problems
from api.routes.common import WriteOut, Year, write
from domain.audience import Depth, ReaderKind, public_kinds
from domain.cycle import Cycle, Phase, RosterEntry
from domain.errors import Conflict, Forbidden, NotFound, StaleVersion
from domain.publication import pool_key
from domain.scheme import Scheme, SubjectKind
from domain.scoring import SCORE_FUNCTION_VERSION, PoolResult, SubjectResult
from domain.team_review import anonymous
from domain.text import text
from projections.cadres import CadresView, list_cadres
from projections.follower import head_position
from projections.results import ResultsView, dirty_pools, read_result, read_results
from projections.units import UnitsView, list_units
from service.audience import policy_of, reader_kind
from service.evaluation import count_objections
from service.evidence import Bundle, build_bundle, encode_bundle
from service.explain import Change, Diff, ScoreCard, diff, explain, history, position_for, render
from service.ledger.tree import head_leaf
from service.principals import Principal, Role
from service.published import (
    Correction,
    Kept,
    PublishedResults,
    pools_at,
    previous_ranks,
    published_as_of,
)
from service.runtime import Services
from service.streams import END, replay_as_of

Text = Annotated[str, text(min_length=1, max_length=500)]
IsoDate = Annotated[str, text(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class OpenCycle(msgspec.Struct, forbid_unknown_fields=True):
    year: Year


class Amendment(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    scheme: Scheme
    reason: Text
    authority: Text


class Announcement(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    team_members: list[Annotated[str, text(min_length=1, max_length=100)]]
    starts_on: IsoDate
    ends_on: IsoDate
    hotline: Annotated[str, text(min_length=3, max_length=100)]


class AnnouncementOut(msgspec.Struct, kw_only=True):
    year: int
    subjects: list[RosterEntry]
    team_members: list[str]
    starts_on: str
    ends_on: str
    hotline: str
    checkpoint: str  # the ledger checkpoint (signed note) the announcement was issued at


class Publication(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    notified_on: IsoDate


class Empty(msgspec.Struct, forbid_unknown_fields=True):
    pass


class CycleOut(msgspec.Struct, kw_only=True):
    year: int
    phase: Phase
    scheme_fingerprint: str | None
    subjects: int
    version: int


class SchemeOut(msgspec.Struct, kw_only=True):
    scheme: Scheme | None
    fingerprint: str | None


class ResultItem(msgspec.Struct, kw_only=True):
    group: str
    kind: SubjectKind
    result: SubjectResult


class ResultsPage(msgspec.Struct, kw_only=True):
    year: int
    phase: Phase
    items: list[ResultItem]
    next_cursor: str | None
    # The published version served (1 as published, one more per correction) and its
    # fingerprint; both None for working results (before publication).
    results_version: int | None = None
    results_fingerprint: str | None = None
    as_of: int | None = None  # the log position asked for with as_of
    corrections: list[Correction] = []


class SubjectResultOut(SubjectResult, frozen=True, kw_only=True, omit_defaults=False):
    # The stored result omits an absent ``satisfaction_gate`` (fingerprints of results of
    # versions 1–3 stay as published); the API always shows every field.
    results_version: int | None = None  # None: the working result (before publication)
    as_of: int | None = None


class CorrectionsOut(msgspec.Struct, kw_only=True):
    year: int
    results_version: int
    results_fingerprint: str
    published_position: int
    corrections: list[Correction]


class NoticeItem(msgspec.Struct, kw_only=True):
    subject: str
    name: str
    kind: SubjectKind
    group: str
    unit_code: str
    grade: str


class NoticeOut(msgspec.Struct, kw_only=True):
    """公示: only what the publication policy lists, named only during its window; after it,
    how many it listed and whether it became final. Objections are counted, never
    attributed."""

    year: int
    results_version: int
    opens_on: str  # local dates, both included
    closes_on: str
    state: Literal["open", "closed"]  # closed: objections are no longer taken
    objections: int  # lodged against the listed grades
    undecided: int  # of those, not yet decided by the committee
    final: bool  # closed, and every objection decided
    listed: int  # how many grades the notice lists (in the results version in force)
    items: list[NoticeItem]  # the names and grades: only while the notice is open


class CorrectionIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    reason: Text
    authority: Text  # e.g. 市委常委会
    reference: Text  # e.g. the minutes' reference


class PendingChange(msgspec.Struct, kw_only=True):
    subject: str
    published: SubjectResult | None
    working: SubjectResult


class PendingPool(msgspec.Struct, kw_only=True):
    group: str
    kind: SubjectKind
    changes: list[PendingChange]


class PendingOut(msgspec.Struct, kw_only=True):
    year: int
    results_version: int
    pools: list[PendingPool]


PRIVILEGED = {Role.ORGANIZER, Role.COMMITTEE, Role.SUPERVISOR}


def _services(request: Request[Any, Any, Any]) -> Any:
    return request.app.state.services


def _check_if_match(request: Request[Any, Any, Any], version: int) -> None:
    expected = expected_version(request)
    if expected != version:
        msg = f"the cycle is at version {version}, not {expected}"
        raise StaleVersion(msg, current=version)


class CycleController(Controller):
    path = "/cycles"
    tags = ["cycles"]  # noqa: RUF012 -- Litestar's own attribute

    @post("/", status_code=201, security=SECURITY, before_request=strict_body(OpenCycle),
          summary="Open a cycle", responses=problems(400, 401, 403, 409))
    async def open(self, request: Request[Any, Any, Any],
                   data: JSONBody[OpenCycle]) -> Response[WriteOut]:
        """Open the assessment cycle (考核周期) of a year (organizer)."""
        return await write(request, 201, lambda p, after: _services(request).evaluation
                           .open_cycle(p, data.year, after_append=after))

    @get("/{year:int}", opt={"public": True}, summary="Read a cycle", responses=problems(404))
    async def read(self, state: State, year: FromPath[int]) -> Response[CycleOut]:
        """The cycle's phase, scheme fingerprint and size; the ETag guards scheme changes."""
        c = await to_thread.run_sync(state.services.evaluation.cycle, year)
        return Response(CycleOut(year=c.year, phase=c.phase,
                                 scheme_fingerprint=c.scheme_fingerprint,
                                 subjects=len(c.roster), version=c.version),
                        headers={"ETag": etag(c.version)})

    @put("/{year:int}/scheme", security=SECURITY, before_request=strict_body(Scheme),
         summary="Set the scheme", responses=problems(400, 401, 403, 404, 409, 412, 422, 428))
    async def set_scheme(self, request: Request[Any, Any, Any], year: FromPath[int],
                         data: JSONBody[Scheme]) -> Response[WriteOut]:
        """Set the scheme (考核方案) while the cycle is in set-up; needs If-Match (the cycle's
        ETag). Weights must sum to 1 per pool; bands best first, the last from 0."""
        services = _services(request)

        def command(p: Any, after: Any) -> Any:
            # Inside the command: a retry of a done request is a replay, not a stale version.
            _check_if_match(request, services.evaluation.cycle(year).version)
            return services.evaluation.set_scheme(p, year, data, after_append=after)

        return await write(request, 200, command)

    @get("/{year:int}/scheme", opt={"public": True}, summary="Read the scheme",
         responses=problems(404))
    async def scheme(self, state: State, year: FromPath[int]) -> SchemeOut:
        """The scheme in force and its fingerprint (published when frozen)."""
        c = await to_thread.run_sync(state.services.evaluation.cycle, year)
        return SchemeOut(scheme=c.scheme, fingerprint=c.scheme_fingerprint)

    @post("/{year:int}/roster", status_code=201, security=SECURITY,
          before_request=strict_body(Empty), summary="Build the roster",
          responses=problems(400, 401, 403, 404, 409, 422))
    async def roster(self, request: Request[Any, Any, Any],
                     year: FromPath[int], data: JSONBody[Empty]) -> Response[WriteOut]:
        """Every unit's team and every cadre in post become subjects, each in the pool of its
        unit's category. Read from the reference data as of this request."""
        services = _services(request)
        replay = await is_replay(request, services, current_principal(request))
        head = await to_thread.run_sync(_head, services)
        for view in () if replay else (UnitsView.name, CadresView.name):
            await wait_for_projection(services, view, head)

        def entries() -> list[RosterEntry]:
            with services.db.read() as cur:
                units = list_units(cur, after_code=None, limit=1_000_000)
                cadres = list_cadres(cur, after_code=None, limit=1_000_000)
            return list(services.evaluation.roster_from(units, cadres))

        built = await to_thread.run_sync(entries)
        return await write(request, 201, lambda p, after: services.evaluation
                           .set_roster(p, year, built, after_append=after))

    @get("/{year:int}/roster", opt={"public": True}, summary="The roster",
         responses=problems(400, 404))
    async def read_roster(self, request: Request[Any, Any, Any], state: State,
                          year: FromPath[int],
                          group: Annotated[str | None, QueryParameter()] = None,
                          cursor: Annotated[str | None, QueryParameter()] = None,
                          limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 500,
                          ) -> Response[list[RosterEntry]]:
        """The subjects (被考核对象) of the cycle by subject id, optionally of one comparison
        group; ``Link: rel="next"`` continues."""
        c = await to_thread.run_sync(state.services.evaluation.cycle, year)
        query = {"group": group}
        after = decode_cursor(cursor, query) or ""
        entries = sorted((e for e in c.roster if (group is None or e.group == group)
                          and e.subject > after), key=lambda e: e.subject)
        page = entries[:limit]
        _, headers = next_page(request, len(entries), limit,
                               page[-1].subject if page else "", query)
        return Response(page, headers=headers)

    @post("/{year:int}/freeze", status_code=201, security=SECURITY,
          before_request=strict_body(Empty), summary="Freeze the scheme",
          responses=problems(400, 401, 403, 404, 409))
    async def freeze(self, request: Request[Any, Any, Any], year: FromPath[int],
                     data: JSONBody[Empty]) -> Response[WriteOut]:
        """Freeze scheme and roster; the fingerprint is published. Later changes only as
        amendments with reason and authority, before scoring opens."""
        return await write(request, 201, lambda p, after: _services(request).evaluation
                           .freeze(p, year, after_append=after))

    @post("/{year:int}/amendments", status_code=201, security=SECURITY,
          before_request=strict_body(Amendment), summary="Amend the frozen scheme",
          responses=problems(400, 401, 403, 404, 409, 422))
    async def amend(self, request: Request[Any, Any, Any], year: FromPath[int],
                    data: JSONBody[Amendment]) -> Response[WriteOut]:
        """Replace the frozen scheme before scoring opens, with a reason and an authority."""
        return await write(request, 201, lambda p, after: _services(request).evaluation
                           .amend(p, year, data.scheme, data.reason, data.authority,
                                  after_append=after))

    @post("/{year:int}/announcement", status_code=201, security=SECURITY, tags=["commitments"],
          before_request=strict_body(Announcement), summary="Issue the year-end announcement",
          responses=problems(400, 401, 403, 404, 409, 422))
    async def announce(self, request: Request[Any, Any, Any], year: FromPath[int],
                       data: JSONBody[Announcement]) -> Response[WriteOut]:
        """考核公告: subjects, team members, dates and the report hotline, published with the
        ledger checkpoint signed now, to be printed in the announcement."""
        services = _services(request)
        cp = await to_thread.run_sync(services.signer.sign, services.db, services.clock.now())
        return await write(request, 201, lambda p, after: services.evaluation.announce(
            p, year, team_members=data.team_members, starts_on=data.starts_on,
            ends_on=data.ends_on, hotline=data.hotline, checkpoint=cp.note.decode(),
            after_append=after))

    @get("/{year:int}/announcement", opt={"public": True}, tags=["commitments"],
         summary="The year-end announcement", responses=problems(404))
    async def announcement(self, state: State, year: FromPath[int]) -> AnnouncementOut:
        """The public announcement, with the checkpoint to verify the log against."""
        c = await to_thread.run_sync(state.services.evaluation.cycle, year)
        if c.announcement is None:
            msg = f"cycle {year} has not been announced"
            raise NotFound(msg, rule="announcement.exists", field="year")
        a = c.announcement
        return AnnouncementOut(year=year, subjects=c.roster, team_members=list(a["team_members"]),
                               starts_on=str(a["starts_on"]), ends_on=str(a["ends_on"]),
                               hotline=str(a["hotline"]), checkpoint=str(a["checkpoint"]))

    @post("/{year:int}/scoring", status_code=201, security=SECURITY,
          before_request=strict_body(Empty), summary="Open scoring",
          responses=problems(400, 401, 403, 404, 409))
    async def open_scoring(self, request: Request[Any, Any, Any], year: FromPath[int],
                           data: JSONBody[Empty]) -> Response[WriteOut]:
        """Open scoring: every subject's file is opened and inputs are accepted."""
        return await write(request, 201, lambda p, after: _services(request).evaluation
                           .open_scoring(p, year, after_append=after))

    @post("/{year:int}/seal", status_code=201, security=SECURITY,
          before_request=strict_body(Empty), summary="Seal the inputs",
          responses=problems(400, 401, 403, 404, 409), tags=["grading"])
    async def seal(self, request: Request[Any, Any, Any], year: FromPath[int],
                   data: JSONBody[Empty]) -> Response[WriteOut]:
        """Close the scoring inputs; records the head of every subject's evidence stream.
        Refused while any subject lacks a weighted component."""
        services = _services(request)
        return await write(request, 201, lambda p, after: services.evaluation
                           .seal(p, year, services.stream_heads, after_append=after))

    @post("/{year:int}/publication", status_code=201, security=SECURITY,
          before_request=strict_body(Publication), summary="Publish the results",
          responses=problems(400, 401, 403, 404, 409), tags=["grading"])
    async def publish(self, request: Request[Any, Any, Any], year: FromPath[int],
                      data: JSONBody[Publication]) -> Response[WriteOut]:
        """Publish: records the results' fingerprint, the score function's version, the
        evidence heads, and the date of the written notification (review windows start)."""
        services = _services(request)
        return await write(request, 201, lambda p, after: services.evaluation
                           .publish(p, year, services.stream_heads,
                                    notified_on=data.notified_on, after_append=after))

    @get("/{year:int}/results", opt={"public": True}, security=SECURITY, tags=["results"],
         summary="Results by comparison group", responses=problems(400, 401, 403, 404, 409,
                                                                  503))
    async def results(self, request: Request[Any, Any, Any], state: State,
                      year: FromPath[int],
                      group: Annotated[str | None, QueryParameter()] = None,
                      kind: Annotated[SubjectKind | None, QueryParameter()] = None,
                      cursor: Annotated[str | None, QueryParameter()] = None,
                      limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 200,
                      min_position: Annotated[int | None, QueryParameter(ge=0, le=INT64)] = None,
                      as_of: Annotated[str | None, QueryParameter(description=AS_OF)] = None,
                      ) -> Response[ResultsPage]:
        """Every subject's score card in pool order (group, kind, then rank with the tie
        rule): components, composite, rank and 位次进退, proposed and final grade.

        Once published, these are the published results — the version in force (1 as
        published, one more per correction, 更正, each listed in ``corrections``), read from
        the log and checked against the fingerprint they were published with — and they are
        public. Before publication the working results, for the organizer, the committee and
        supervisors. ``as_of`` reads them as they stood then: the published version in force
        at that point, or (privileged) the working results replayed from the evidence."""
        services = state.services
        cycle = await _visible_cycle(request, services, year, as_of)
        kinds = public_kinds(policy_of(cycle), reader_kind(optional_principal(request)))
        if kind is not None and kinds is not None and kind not in kinds:
            msg = f"the results of kind {kind.value} are not public (publication policy)"
            raise Forbidden(msg, rule="card.readers", field="kind")
        query = {"group": group, "kind": kind.value if kind else None, "as_of": as_of}
        after = decode_cursor(cursor, query)
        key = msgspec.json.decode(after, type=tuple[str, str, int]) if after else None
        view = await to_thread.run_sync(_results_view, services, year, as_of)
        if view.published is None and view.position is None:
            await wait_for_projection(services, ResultsView.name, min_position)

        def page() -> list[tuple[str, str, int, SubjectResult]]:
            if view.pools is not None:
                return _page(view.pools, group, query["kind"], key, limit + 1, kinds)
            with services.db.read() as cur:
                _not_dirty(cur, year, group, query["kind"])
                return read_results(cur, year, group=group, kind=query["kind"], after=key,
                                    limit=limit + 1)

        rows = await to_thread.run_sync(page)
        items = [ResultItem(group=g, kind=SubjectKind(k), result=r) for g, k, _, r in
                 rows[:limit]]
        last = rows[min(limit, len(rows)) - 1][:3] if rows else ("", "", 0)
        nxt, headers = next_page(request, len(rows), limit,
                                 msgspec.json.encode(last).decode(), query)
        published = view.published
        return Response(ResultsPage(
            year=year, phase=cycle.phase, items=items, next_cursor=nxt,
            results_version=published.version if published else None,
            results_fingerprint=published.fingerprint if published else None,
            as_of=view.position,
            corrections=published.corrections if published else []), headers=headers)

    @get("/{year:int}/subjects/{subject:str}/explain", security=SECURITY, tags=["results"],
         summary="Explain a score card down to its events",
         responses=problems(400, 401, 403, 404))
    async def explain(self, request: Request[Any, Any, Any], state: State,
                      year: FromPath[int], subject: FromPath[str],
                      as_of: Annotated[str | None, QueryParameter(
                          description="a log position or an ISO time with zone")] = None,
                      format: Annotated[str | None, QueryParameter()] = None,  # noqa: A002
                      ) -> Response[Any]:
        """Every number of the score card with the events behind it (position, leaf hash,
        actor, time, facts), replayed through the score function as of ``as_of`` (default:
        now). ``format=text`` for a terminal. Interview notes only for supervisors and
        investigators whose case covers the subject. Who may read a card: docs/evaluation.md,
        "Who may read a result" (the subject itself reads its card without who entered each
        input)."""
        principal = current_principal(request)
        services = state.services
        reader = await _card(services, principal, "explain-notes", year, subject)
        restricted_ok = principal.role in {Role.SUPERVISOR, Role.INVESTIGATOR}

        def run() -> ScoreCard:
            with services.db.read() as cur:
                return explain(cur, services.store.mapper, year, subject, as_of,
                               restricted_ok=restricted_ok)

        card = await to_thread.run_sync(run)
        if reader == ReaderKind.SELF:  # the subject reads its card, not who entered what
            card = msgspec.structs.replace(card, inputs=[
                msgspec.structs.replace(line, actor="", facts={
                    k: v for k, v in line.facts.items() if k not in WHO_ENTERED})
                for line in card.inputs], analysis=anonymous(card.analysis))
        if format == "text":
            return Response(render(card), media_type="text/plain")
        return Response(card)

    @get("/{year:int}/subjects/{subject:str}/diff", security=SECURITY, tags=["results"],
         summary="What changed between two points in time", responses=problems(400, 401, 403,
                                                                              404))
    async def diff(self, request: Request[Any, Any, Any], state: State, year: FromPath[int],
                   subject: FromPath[str],
                   from_: Annotated[str, QueryParameter(name="from")],
                   to: Annotated[str, QueryParameter()]) -> Diff:
        """The score card's fields that differ between two as-of points (log positions or ISO
        times with zone), each as [before, after]."""
        principal = current_principal(request)
        services = state.services
        await _card(services, principal, "diff", year, subject)

        def run() -> Diff:
            with services.db.read() as cur:
                return diff(cur, services.store.mapper, year, subject, from_, to)

        return await to_thread.run_sync(run)

    @get("/{year:int}/subjects/{subject:str}/history", security=SECURITY, tags=["results"],
         summary="How the score card changed, event by event",
         responses=problems(401, 403, 404))
    async def history(self, request: Request[Any, Any, Any], state: State,
                      year: FromPath[int], subject: FromPath[str]) -> list[Change]:
        """Each event of the subject's file, with what it changed (composite, rank, proposed
        and final grade, no-grade reason) from what to what, by whom, when."""
        principal = current_principal(request)
        services = state.services
        reader = await _card(services, principal, "history", year, subject)

        def run() -> list[Change]:
            with services.db.read() as cur:
                return history(cur, services.store.mapper, year, subject)

        changes = await to_thread.run_sync(run)
        return changes if reader != ReaderKind.SELF else _own_view(changes, year)

    @get("/{year:int}/subjects/{subject:str}/evidence", security=SECURITY, tags=["results"],
         summary="Evidence bundle for offline verification",
         responses={**problems(401, 403, 404, 409), 200: ResponseSpec(
             Bundle, description="The bundle, as a JSON file (docs/evidence.md)",
             generate_examples=False)})
    async def evidence(self, request: Request[Any, Any, Any], state: State,
                       year: FromPath[int], subject: FromPath[str],
                       since: Annotated[int | None, QueryParameter(ge=1, le=INT64)] = None,
                       ballots: FromQuery[bool] = False,
                       ) -> Response[bytes]:
        """One self-contained JSON file with the evidence of the subject's whole pool, to be
        checked offline with ``kaoping verify BUNDLE --key KEY [--trusted CHECKPOINT]``.
        ``since``: include a consistency proof from that tree size (default: the checkpoint
        printed in the year-end announcement). ``ballots=true`` (supervisors only) adds the
        ballots on the boards of the pool's ballot sessions, for an offline recount: they link
        each voter's tracker to their answers, so such a bundle is sealed material. The appeal
        body reads the bundle of a subject that filed an appeal (申诉), each read recorded."""
        principal = current_principal(request)
        if principal.role not in EVIDENCE_READERS:
            msg = ("evidence bundles are for supervisors, investigators, the organizer and the "
                   "appeal body")
            raise Forbidden(msg, rule="evidence.reader")
        if ballots and principal.role != Role.SUPERVISOR:
            msg = "bundles with ballots are for supervisors"
            raise Forbidden(msg, rule="evidence.ballots-reader", field="ballots")
        services = state.services
        what = "evidence+ballots" if ballots else "evidence"
        rule, case = "evidence.reader", None
        if principal.role == Role.INVESTIGATOR:  # a refusal is recorded (and raised) here
            case = await to_thread.run_sync(services.cases.case_for, principal.id, year,
                                            subject)
            await to_thread.run_sync(partial(services.cases.gate, record_allowed=False),
                                     principal, "evidence", year, subject, case)
            rule = "investigator.case-scope"
        if principal.role == Role.APPEAL_BODY:  # a subject that filed an appeal (申诉)
            cycle = await to_thread.run_sync(services.evaluation.cycle, year)
            await to_thread.run_sync(services.cards.check_appeal, principal, "evidence",
                                     cycle, subject)
            rule = "appeal-body.appeal-filed"
        bundle = await to_thread.run_sync(partial(build_bundle, ballots=ballots), services,
                                          year, subject, since)
        # Recorded once the bundle exists: a refusal for an unpublished cycle reads nothing.
        await to_thread.run_sync(services.cases.record, principal, what, year, subject, case,
                                 True, rule)
        name = f"evidence-{year}-{subject.replace(':', '-')}.json"
        return Response(encode_bundle(bundle), media_type="application/json", headers={
            "Content-Disposition": f'attachment; filename="{name}"'})

    @get("/{year:int}/subjects/{subject:str}/result", opt={"public": True}, security=SECURITY,
         tags=["results"], summary="One subject's result", responses=problems(400, 401, 403,
                                                                              404, 503))
    async def subject_result(self, request: Request[Any, Any, Any], state: State,
                             year: FromPath[int], subject: FromPath[str],
                             min_position: Annotated[int | None, QueryParameter(
                                 ge=0, le=INT64)] = None,
                             as_of: Annotated[str | None, QueryParameter(
                                 description=AS_OF)] = None,
                             ) -> SubjectResultOut:
        """One subject's score card, with the same versions as the results: the published
        version in force once published (``results_version``), else the working result. The
        public reads the published cards of the kinds the scheme's publication policy names
        (leadership teams by default); a cadre's card is for the cadre, the organizer, the
        committee, supervisors and investigators whose open case covers the cadre."""
        services = state.services
        principal = optional_principal(request)
        # Before scoring there is no card to gate (and no roster to find the subject in): the
        # phase is public, so say that first, to anyone.
        _require_scoring_opened(await to_thread.run_sync(services.evaluation.cycle, year))
        reader = await _card(services, principal, "result", year, subject, depth="result")
        cycle = await _visible_cycle(request, services, year, as_of, privileged=reader in (
            ReaderKind.EVALUATOR, ReaderKind.INVESTIGATOR))
        entry = cycle.entry(subject)
        view = await to_thread.run_sync(_results_view, services, year, as_of)
        if view.pools is not None:
            found = next((r for _, _, _, r in _page(view.pools, entry.group, entry.kind.value,
                                                     None, 10**7) if r.subject == subject), None)
        else:
            await wait_for_projection(services, ResultsView.name, min_position)

            def read() -> SubjectResult | None:
                with services.db.read() as cur:
                    _not_dirty(cur, year, entry.group, entry.kind.value)
                    return read_result(cur, year, subject)

            found = await to_thread.run_sync(read)
        if found is None:
            msg = f"{subject} has no result yet (its files open when scoring opens)"
            raise NotFound(msg, rule="results.subject", field="subject")
        published = view.published
        return SubjectResultOut(**msgspec.structs.asdict(found),
                                results_version=published.version if published else None,
                                as_of=view.position)

    @get("/{year:int}/corrections", opt={"public": True}, tags=["results"],
         summary="Corrections (更正) of the published results", responses=problems(404, 409))
    async def corrections(self, state: State, year: FromPath[int]) -> CorrectionsOut:
        """The published results' versions: version 1 as published, then each correction
        with its basis (复核, 申诉 or a committee act), reference, reason, authority, the
        pools it changed and the fingerprint of the new version."""
        published = await to_thread.run_sync(state.services.evaluation.published, year)
        if published is None:
            msg = f"cycle {year} is not published"
            raise Conflict(msg, rule="results.published", field="year")
        return CorrectionsOut(year=year, results_version=published.version,
                              results_fingerprint=published.fingerprint,
                              published_position=published.published_position,
                              corrections=published.corrections)

    @get("/{year:int}/notice", opt={"public": True}, tags=["results"],
         summary="The public notice (公示) of the grades the policy names",
         responses=problems(404, 409))
    async def notice(self, state: State, year: FromPath[int]) -> NoticeOut:
        """公示: during the notice window (``notice_days`` from the written notification, in
        local dates), the names and grades of the subjects whose published grade the scheme's
        publication policy lists (``notice_grades``: 优秀 and 好 by default) — nothing else:
        no scores, no sanctions, no vetoes — with ``state`` (``open`` while objections are
        taken, ``closed`` after) and how many objections were lodged and are still undecided
        (counts only: who objected, and on whom, stays in the cases). It stays readable after
        the window — ``final`` once closed with every objection decided, ``listed`` how many
        grades it listed — but names nobody then: ``items`` is empty once the window has
        closed (公示 is a notice for its period, not a standing public list of individuals'
        grades; the committee, the organizer and supervisors read the names in
        ``notice/status``). Before publication: 409 ``notice.window``."""
        services = state.services
        today = services.clock.now().astimezone(services.evaluation.tz).date()

        def view() -> NoticeOut:
            # Everything the notice shows is in the log, and its state in today's date: one
            # view per (year, date, log head), kept, so a flood of public reads costs a head
            # query each, not the cycle, the results and the objection counts.
            with services.db.read() as cur:  # the head's leaf too: a log restored or failed
                head = head_leaf(cur)  # over to other events can have the same size
            key = (year, today, head)
            kept: Kept[NoticeOut] = state.notice_views
            return kept.get(key, lambda: _notice_view(services, year, today))

        return await to_thread.run_sync(view)

    @get("/{year:int}/corrections/pending", security=SECURITY, tags=["results"],
         summary="What a correction would publish", responses=problems(401, 403, 404, 409))
    async def pending(self, request: Request[Any, Any, Any], state: State,
                      year: FromPath[int]) -> PendingOut:
        """The pools whose working results (the evidence as it stands: a sanction lifted, a
        decision recorded after publication) differ from the published version in force,
        with each subject whose card would change. For the committee, the organizer and
        supervisors; nothing here is public until a correction publishes it."""
        if current_principal(request).role not in PRIVILEGED:
            msg = "pending corrections are for the organizer, the committee and supervisors"
            raise Forbidden(msg, rule="results.published")
        services = state.services
        published, pools = await to_thread.run_sync(services.evaluation.pending, year,
                                                    services.stream_heads)
        out = []
        for pool in pools:
            before = published.pools.get((pool.group, pool.kind.value))
            was = {r.subject: r for r in before.results} if before else {}
            out.append(PendingPool(group=pool.group, kind=pool.kind, changes=[
                PendingChange(subject=r.subject, published=was.get(r.subject), working=r)
                for r in pool.results if was.get(r.subject) != r]))
        return PendingOut(year=year, results_version=published.version, pools=out)

    @post("/{year:int}/corrections", status_code=201, security=SECURITY, tags=["results"],
          before_request=strict_body(CorrectionIn), summary="Publish a correction (更正)",
          responses=problems(400, 401, 403, 404, 409, 422))
    async def correct(self, request: Request[Any, Any, Any], year: FromPath[int],
                      data: JSONBody[CorrectionIn]) -> Response[WriteOut]:
        """A committee act publishes every pending change as a new results version, with
        its reason, authority and reference (e.g. the minutes). Refused when nothing changed
        (``correction.no-change``) or when a pool would break its quota."""
        services = _services(request)
        return await write(request, 201, lambda p, after: services.evaluation.correct(
            p, year, services.stream_heads, reason=data.reason, authority=data.authority,
            reference=data.reference, after_append=after))


AS_OF = ("a log position, an ISO 8601 time with zone, or a named point of the cycle: "
         "announcement, scoring, seal, publication, correction-N")


@dataclass(frozen=True)
class ResultsViewOf:
    published: PublishedResults | None = None
    pools: list[PoolResult] | None = None  # None: read the working results' read model
    position: int | None = None  # the as_of position, when one was asked


def _results_view(services: Any, year: int, as_of: str | None) -> ResultsViewOf:
    """Which results a read serves: the published version in force (at ``as_of``, or now),
    else the working results (replayed at ``as_of``, or the read model)."""
    mapper = services.store.mapper
    with services.db.read() as cur:
        position = position_for(cur, as_of, year) if as_of else None
        published = published_as_of(cur, mapper, year, END if position is None else position)
        if published is not None:
            return ResultsViewOf(published=published, pools=published.results(),
                                 position=position)
        if position is None:
            return ResultsViewOf()
        cycle = replay_as_of(cur, mapper, Cycle.id_for(year), position)
        if not isinstance(cycle, Cycle) or cycle.scheme is None:
            msg = f"cycle {year} had no scheme at position {position}"
            raise NotFound(msg, rule="as-of.cycle", field="as_of")
        _, previous = previous_ranks(cur, mapper, year, position)
        return ResultsViewOf(pools=pools_at(cur, mapper, cycle, position, previous,
                                            cycle.scoring_version(SCORE_FUNCTION_VERSION)),
                             position=position)


def _page(pools: list[PoolResult], group: str | None, kind: str | None,
          after: tuple[str, str, int] | None, limit: int,
          kinds: set[SubjectKind] | None = None) -> list[tuple[str, str, int, SubjectResult]]:
    """The same keyset pages over a list of pools as the read model gives; only pools of
    ``kinds`` when given (what the publication policy shows the caller)."""
    rows = [(p.group, p.kind.value, seq, r) for p in sorted(pools, key=pool_key)
            for seq, r in enumerate(p.results)
            if (group is None or p.group == group) and (kind is None or p.kind.value == kind)
            and (kinds is None or p.kind in kinds)]
    if after is not None:
        rows = [row for row in rows if row[:3] > after]
    return rows[:limit]


EVIDENCE_READERS = {Role.SUPERVISOR, Role.INVESTIGATOR, Role.ORGANIZER, Role.COMMITTEE,
                    Role.APPEAL_BODY}


def _not_dirty(cur: Any, year: int, group: str | None, kind: str | None) -> None:
    """Results being recomputed (a backlog is being caught up) are not served stale."""
    for g, k in dirty_pools(cur, year):
        if (group is None or g == group) and (kind is None or k == kind):
            raise HTTPException(status_code=503, headers={"Retry-After": "1"},
                                detail="these results are being recomputed; retry shortly")


def _published_at(services: Any, year: int, as_of: str) -> bool:
    with services.db.read() as cur:
        return published_as_of(cur, services.store.mapper, year,
                               position_for(cur, as_of, year)) is not None


def _head(services: Any) -> int:
    with services.db.read() as cur:
        return head_position(cur)


async def _card(services: Any, principal: Principal | None, what: str, year: int,
                subject: str, depth: Depth = "detail") -> ReaderKind:
    """The card gate (service/audience.py): refuses, and records investigators' reads."""
    cycle = await to_thread.run_sync(services.evaluation.cycle, year)
    reader: ReaderKind = await to_thread.run_sync(services.cards.check, principal, what,
                                                  cycle, subject, depth)
    return reader


# The facts of an input that say who entered it or in which post: the subject reading its own
# card sees what was scored, never by whom (a leader's score is not to be answered to the
# leader; docs/evaluation.md, "Who may read a result").
WHO_ENTERED = frozenset({"rater", "post", "comment", "member", "members", "leader", "actor",
                         "decided_by", "reviewer", "by"})


def _own_view(changes: list[Change], year: int) -> list[Change]:
    """A subject reading its own history sees that a rival's event moved its card, not
    which rival or what (a rival's sanction is not theirs to read), nor who entered each of
    its own inputs (a leader's score is not to be answered to the leader)."""
    own = {"self", "cycle", "published", f"results-{year - 1}"}
    return [Change(position=c.position, topic=c.topic if c.by in own else "", actor="",
                   time=c.time, changed=c.changed, by=c.by if c.by in own else "pool")
            for c in changes]


async def _visible_cycle(request: Request[Any, Any, Any], services: Any, year: int,
                         as_of: str | None = None, *, privileged: bool | None = None) -> Cycle:
    """The cycle, if its results may be read by this caller: once published, by anyone (an
    ``as_of`` before publication only by the privileged); before, by the privileged
    (``privileged``: the card gate already decided who the caller is)."""
    cycle: Cycle = await to_thread.run_sync(services.evaluation.cycle, year)
    principal = optional_principal(request)
    if privileged is None:
        privileged = principal is not None and principal.role in PRIVILEGED
    public = cycle.phase == Phase.PUBLISHED and (
        as_of is None or await to_thread.run_sync(_published_at, services, year, as_of))
    if not public and not privileged:
        msg = "results are public once published; until then only for the organizer, " \
              "the committee and supervisors"
        raise Forbidden(msg, rule="results.published")
    _require_scoring_opened(cycle)
    return cycle


def _require_scoring_opened(cycle: Cycle) -> None:
    if cycle.phase in (Phase.SETUP, Phase.FROZEN):
        msg = f"cycle {cycle.year} has no results before scoring opens"
        raise Conflict(msg, rule="results.scoring-open")


def _notice_view(services: Services, year: int, today: date) -> NoticeOut:
    """The public notice (公示) of ``year`` as of ``today`` (see ``CycleController.notice``):
    its window and its listed grades and objections as the service has them."""
    ev = services.evaluation
    cycle = ev.current(year)
    published = ev.published(year)
    if published is None:
        msg = f"cycle {year} is not published: there is no notice (公示) yet"
        raise Conflict(msg, rule="notice.window", field="year")
    opens, closes = ev.notice_window(cycle)
    if today < opens:
        msg = f"the notice (公示) of {year} runs from {opens} to {closes}; today is {today}"
        raise Conflict(msg, rule="notice.window", field="year")
    listed, objections = ev.notice_objections(cycle)
    lodged, undecided = count_objections(objections)
    closed = today > closes
    names = {e.subject: e for e in cycle.roster}
    items = [NoticeItem(subject=r.subject, name=names[r.subject].name, kind=pool.kind,
                        group=pool.group, unit_code=names[r.subject].unit_code,
                        grade=listed[r.subject])
             for pool in sorted(published.results(), key=pool_key) for r in pool.results
             if r.subject in listed]
    return NoticeOut(year=year, results_version=published.version,
                     opens_on=opens.isoformat(), closes_on=closes.isoformat(),
                     state="closed" if closed else "open",
                     objections=lodged, undecided=undecided, final=closed and undecided == 0,
                     listed=len(items), items=[] if closed else items)
