"""/api/v1/cycles — the assessment cycle: scheme, roster, phases, grading, results."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

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
    next_page,
    strict_body,
    wait_for_projection,
)
from api.openapi import problems
from api.routes.common import WriteOut, Year, write
from domain.cycle import Cycle, Phase, RosterEntry
from domain.errors import Conflict, Forbidden, NotFound, StaleVersion
from domain.scheme import Scheme, SubjectKind
from domain.scoring import SubjectResult
from projections.cadres import CadresView, list_cadres
from projections.follower import head_position
from projections.results import ResultsView, dirty_pools, read_result, read_results
from projections.units import UnitsView, list_units
from service.evidence import Bundle, build_bundle, encode_bundle
from service.explain import Change, Diff, ScoreCard, diff, explain, history, render
from service.principals import Role

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
IsoDate = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class OpenCycle(msgspec.Struct, forbid_unknown_fields=True):
    year: Year


class Amendment(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    scheme: Scheme
    reason: Text
    authority: Text


class Announcement(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    team_members: list[Annotated[str, msgspec.Meta(min_length=1, max_length=100)]]
    starts_on: IsoDate
    ends_on: IsoDate
    hotline: Annotated[str, msgspec.Meta(min_length=3, max_length=100)]


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
        cycle = await to_thread.run_sync(services.evaluation.cycle, year)
        _check_if_match(request, cycle.version)
        return await write(request, 200, lambda p, after: services.evaluation
                           .set_scheme(p, year, data, after_append=after))

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
        head = await to_thread.run_sync(_head, services)
        for view in (UnitsView.name, CadresView.name):
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
                      ) -> Response[ResultsPage]:
        """Every subject's score card in pool order (group, kind, then rank with the tie
        rule): components, composite, rank and 位次进退, proposed and final grade. Public after
        publication; before it, for the organizer, the committee and supervisors."""
        services = state.services
        cycle = await _visible_cycle(request, services, year)
        query = {"group": group, "kind": kind.value if kind else None}
        after = decode_cursor(cursor, query)
        key = None
        if after:
            g, k, q = msgspec.json.decode(after, type=tuple[str, str, int])
            key = (g, k, q)
        await wait_for_projection(services, ResultsView.name, min_position)

        def page() -> list[tuple[str, str, int, SubjectResult]]:
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
        return Response(ResultsPage(year=year, phase=cycle.phase, items=items,
                                    next_cursor=nxt), headers=headers)

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
        now). ``format=text`` for a terminal. Interview notes only for the assessment team and
        supervisors."""
        principal = current_principal(request)
        if principal.role not in EVIDENCE_READERS:
            msg = "explanations are for supervisors, investigators and the organizer"
            raise Forbidden(msg, rule="explain.reader")
        services = state.services
        restricted_ok = principal.role in {Role.SUPERVISOR, Role.INVESTIGATOR} and (
            await to_thread.run_sync(services.cases.gate, principal, "explain-notes", year,
                                     subject))

        def run() -> ScoreCard:
            with services.db.read() as cur:
                return explain(cur, services.store.mapper, year, subject, as_of,
                               restricted_ok=restricted_ok)

        card = await to_thread.run_sync(run)
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
        if principal.role not in EVIDENCE_READERS:
            msg = "diffs are for supervisors, investigators and the organizer"
            raise Forbidden(msg, rule="explain.reader")
        services = state.services

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
        if principal.role not in EVIDENCE_READERS:
            msg = "histories are for supervisors, investigators and the organizer"
            raise Forbidden(msg, rule="explain.reader")
        services = state.services

        def run() -> list[Change]:
            with services.db.read() as cur:
                return history(cur, services.store.mapper, year, subject)

        return await to_thread.run_sync(run)

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
        each voter's tracker to their answers, so such a bundle is sealed material."""
        principal = current_principal(request)
        if principal.role not in EVIDENCE_READERS:
            msg = "evidence bundles are for supervisors, investigators and the organizer"
            raise Forbidden(msg, rule="evidence.reader")
        if ballots and principal.role != Role.SUPERVISOR:
            msg = "bundles with ballots are for supervisors"
            raise Forbidden(msg, rule="evidence.ballots-reader", field="ballots")
        services = state.services
        what = "evidence+ballots" if ballots else "evidence"
        rule = "evidence.reader"
        if principal.role == Role.INVESTIGATOR:  # a refusal is recorded (and raised) here
            await to_thread.run_sync(partial(services.cases.gate, record_allowed=False),
                                     principal, "evidence", year, subject)
            rule = "investigator.case-scope"
        bundle = await to_thread.run_sync(partial(build_bundle, ballots=ballots), services,
                                          year, subject, since)
        # Recorded once the bundle exists: a refusal for an unpublished cycle reads nothing.
        await to_thread.run_sync(services.cases.record, principal, what, year, subject, None,
                                 True, rule)
        name = f"evidence-{year}-{subject.replace(':', '-')}.json"
        return Response(encode_bundle(bundle), media_type="application/json", headers={
            "Content-Disposition": f'attachment; filename="{name}"'})

    @get("/{year:int}/subjects/{subject:str}/result", opt={"public": True}, security=SECURITY,
         tags=["results"], summary="One subject's result", responses=problems(401, 403, 404,
                                                                              503))
    async def subject_result(self, request: Request[Any, Any, Any], state: State,
                             year: FromPath[int], subject: FromPath[str],
                             min_position: Annotated[int | None, QueryParameter(
                                 ge=0, le=INT64)] = None,
                             ) -> SubjectResult:
        """One subject's score card (same visibility as the results)."""
        services = state.services
        cycle = await _visible_cycle(request, services, year)
        await wait_for_projection(services, ResultsView.name, min_position)

        entry = cycle.entry(subject)

        def read() -> SubjectResult | None:
            with services.db.read() as cur:
                _not_dirty(cur, year, entry.group, entry.kind.value)
                return read_result(cur, year, subject)

        found = await to_thread.run_sync(read)
        if found is None:
            msg = f"{subject} has no result yet (its files open when scoring opens)"
            raise NotFound(msg, rule="results.subject", field="subject")
        return found


EVIDENCE_READERS = {Role.SUPERVISOR, Role.INVESTIGATOR, Role.ORGANIZER, Role.COMMITTEE}


def _not_dirty(cur: Any, year: int, group: str | None, kind: str | None) -> None:
    """Results being recomputed (a backlog is being caught up) are not served stale."""
    for g, k in dirty_pools(cur, year):
        if (group is None or g == group) and (kind is None or k == kind):
            raise HTTPException(status_code=503, headers={"Retry-After": "1"},
                                detail="these results are being recomputed; retry shortly")


def _head(services: Any) -> int:
    with services.db.read() as cur:
        return head_position(cur)


async def _visible_cycle(request: Request[Any, Any, Any], services: Any, year: int) -> Cycle:
    cycle: Cycle = await to_thread.run_sync(services.evaluation.cycle, year)
    principal = optional_principal(request)
    if cycle.phase != Phase.PUBLISHED and (principal is None
                                           or principal.role not in PRIVILEGED):
        msg = "results are public once published; until then only for the organizer, " \
              "the committee and supervisors"
        raise Forbidden(msg, rule="results.published")
    if cycle.phase in (Phase.SETUP, Phase.FROZEN):
        msg = f"cycle {year} has no results before scoring opens"
        raise Conflict(msg, rule="results.scoring-open")
    return cycle
