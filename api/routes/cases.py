"""/api/v1/cases — report-line cases (举报); /api/v1/reports/status; /api/v1/audit/access."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from anyio import to_thread
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter

from api.auth import SECURITY, current_principal
from api.mechanisms import (
    INT64,
    decode_cursor,
    next_page,
    strict_body,
    wait_for_projection,
)
from api.openapi import problems
from api.problems import BodyValidationError, FieldError
from api.routes.common import CaseOpened, WriteOut, Year, write, write_opening_case
from domain.cases import CaseState, Channel
from domain.errors import Forbidden
from domain.text import name_text, text
from projections.cases import CasesView, access_log
from service.cases import follow_up_code
from service.principals import Role

Text = Annotated[str, text(min_length=1, max_length=5000)]
Word = Annotated[str, text(min_length=1, max_length=64)]


class ReportIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    channel: Channel
    year: Year
    subjects: list[Word]
    summary: Text
    reporter: Annotated[str, text(max_length=200)] | None = None  # None: anonymous


class ReportOut(CaseOpened, kw_only=True):
    """A report: its case is the stream written (``case_id`` = ``stream_id``)."""


class AssignIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    investigator: Annotated[str, text(pattern=r"^person:[a-z-]+:[A-Za-z0-9._-]+$")]


class FindingIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    finding: Text


class OutcomeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    kind: Word
    subject: Word
    reference: Text


class InvestigatorIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    investigator: Annotated[str, text(pattern=r"^person:[a-z-]+:[A-Za-z0-9._-]+$")]
    name: Annotated[str, name_text(max_length=100)]


class CaseSummary(msgspec.Struct, kw_only=True):
    case_id: UUID
    year: int
    subjects: list[str]
    state: CaseState
    investigator: str | None


class CasePage(msgspec.Struct, kw_only=True):
    items: list[CaseSummary]
    next_cursor: str | None


class CloseIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    conclusion: Text


class CaseOut(msgspec.Struct, kw_only=True):
    case_id: UUID
    channel: Channel
    year: Year
    subjects: list[str]
    summary: str
    state: CaseState
    investigator: str | None
    findings: list[str]
    outcomes: list[list[str]]
    reporter: str | None  # the intake role only; null for everyone else


class StatusOut(msgspec.Struct, kw_only=True):
    state: CaseState


class AccessEntry(msgspec.Struct, kw_only=True):
    position: int
    reader: str
    role: str
    what: str
    year: int | None
    subject: str | None
    case: str | None
    allowed: bool
    rule: str
    at: str  # the read; for counted refusals, the first of them
    count: int = 1  # refused reads are counted per reader, material, rule and window
    last: str | None = None  # the last refusal counted (= at for a single read)


def _cases(request: Request[Any, Any, Any]) -> Any:
    return request.app.state.services.cases


class CaseController(Controller):
    path = "/cases"
    tags = ["cases"]  # noqa: RUF012 -- Litestar's own attribute

    @post("/", status_code=201, security=SECURITY, before_request=strict_body(ReportIn),
          summary="Take a report", responses=problems(400, 401, 403, 422))
    async def report(self, request: Request[Any, Any, Any],
                     data: JSONBody[ReportIn]) -> Response[ReportOut]:
        """A hotline, mailbox or website report about subjects of a cycle (intake role); a
        challenge of a public commitment enters on its target (the commitments route), so
        channel ``challenge`` is refused here (``case.challenge-via-commitments``). The
        reporter's identity is optional; an anonymous reporter gets a follow-up code, shown
        only in this response (and in its replay to the same Idempotency-Key)."""
        principal = current_principal(request)
        code = None if data.reporter else follow_up_code()

        def command(after: Any) -> Any:
            return _cases(request).report(
                principal, channel=data.channel, year=data.year, subjects=data.subjects,
                summary=data.summary, reporter=data.reporter, after_append=after, code=code)[0]

        return await write_opening_case(request, ReportOut, command, code)

    @post("/{case_id:uuid}/assignment", status_code=201, security=SECURITY,
          before_request=strict_body(AssignIn), summary="Assign an investigator",
          responses=problems(400, 401, 403, 404, 409))
    async def assign(self, request: Request[Any, Any, Any], case_id: FromPath[UUID],
                     data: JSONBody[AssignIn]) -> Response[WriteOut]:
        """Assign the case to an investigator (their principal id, e.g. person:staff:wang)."""
        return await write(request, 201, lambda p, after: _cases(request).assign(
            p, case_id, data.investigator, after_append=after))

    @post("/{case_id:uuid}/findings", status_code=201, security=SECURITY,
          before_request=strict_body(FindingIn), summary="Record a finding",
          responses=problems(400, 401, 403, 404, 409))
    async def finding(self, request: Request[Any, Any, Any], case_id: FromPath[UUID],
                      data: JSONBody[FindingIn]) -> Response[WriteOut]:
        """A finding of the assigned investigator."""
        return await write(request, 201, lambda p, after: _cases(request).work(
            p, case_id, "finding", finding=data.finding, after_append=after))

    @post("/{case_id:uuid}/outcomes", status_code=201, security=SECURITY,
          before_request=strict_body(OutcomeIn), summary="Link an outcome",
          responses=problems(400, 401, 403, 404, 409, 422))
    async def outcome(self, request: Request[Any, Any, Any], case_id: FromPath[UUID],
                      data: JSONBody[OutcomeIn]) -> Response[WriteOut]:
        """Link what the case caused: an adjustment, a sanction or a grade change (by its
        reference), or none."""
        return await write(request, 201, lambda p, after: _cases(request).work(
            p, case_id, "outcome", kind=data.kind, subject=data.subject,
            reference=data.reference, after_append=after))

    @post("/{case_id:uuid}/closure", status_code=201, security=SECURITY,
          before_request=strict_body(CloseIn), summary="Close the case",
          responses=problems(400, 401, 403, 404, 409))
    async def close(self, request: Request[Any, Any, Any], case_id: FromPath[UUID],
                    data: JSONBody[CloseIn]) -> Response[WriteOut]:
        """Close the case with a conclusion; its investigator's access ends."""
        return await write(request, 201, lambda p, after: _cases(request).work(
            p, case_id, "close", conclusion=data.conclusion, after_append=after))

    @get("/", security=SECURITY, summary="List cases", responses=problems(400, 401, 403, 503))
    async def list_(self, request: Request[Any, Any, Any],
                    cursor: Annotated[str | None, QueryParameter()] = None,
                    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
                    min_position: Annotated[int | None, QueryParameter(ge=0, le=INT64)] = None,
                    ) -> Response[CasePage]:
        """Investigators: the cases assigned to them; supervisors: every case. By case id;
        follow ``Link: rel="next"``. Each listing is recorded in the access record."""
        principal = current_principal(request)
        services = request.app.state.services
        after = decode_cursor(cursor, {})
        if after is not None:
            try:
                UUID(after)
            except ValueError:
                raise BodyValidationError(FieldError(
                    field="cursor", rule="cursor",
                    message="the cursor is not one this API issued")) from None
        await wait_for_projection(services, CasesView.name, min_position)
        rows = await to_thread.run_sync(lambda: _cases(request).listing(
            principal, after=after, limit=limit + 1))
        items = [CaseSummary(**r) for r in rows[:limit]]
        nxt, headers = next_page(request, len(rows), limit,
                                 str(items[-1].case_id) if items else "", {})
        return Response(CasePage(items=items, next_cursor=nxt), headers=headers)

    @get("/{case_id:uuid}", security=SECURITY, summary="Read a case file",
         responses=problems(401, 403, 404))
    async def read(self, request: Request[Any, Any, Any], case_id: FromPath[UUID]) -> CaseOut:
        """The case file: intake, supervisors, and the assigned investigator; the reporter's
        identity only for intake. Every read is recorded."""
        principal = current_principal(request)
        cases = _cases(request)
        case = await to_thread.run_sync(cases.case, case_id)
        allowed = principal.role in (Role.INTAKE, Role.SUPERVISOR) or (
            principal.role == Role.INVESTIGATOR and case.investigator == principal.id)
        await to_thread.run_sync(cases.record, principal, "case", case.year, None,
                                 str(case_id), allowed, "case.readers")
        if not allowed:
            msg = "case files are for intake, supervisors and the assigned investigator"
            raise Forbidden(msg, rule="case.readers")
        return CaseOut(case_id=case_id, channel=case.channel, year=case.year,
                       subjects=case.subjects, summary=case.summary, state=case.state,
                       investigator=case.investigator, findings=case.findings,
                       outcomes=[list(o) for o in case.outcomes],
                       reporter=case.reporter if principal.role == Role.INTAKE else None)


@post("/investigators", status_code=201, security=SECURITY, tags=["cases"],
      before_request=strict_body(InvestigatorIn), summary="Register an investigator",
      responses=problems(400, 401, 403, 409))
async def register_investigator(request: Request[Any, Any, Any],
                                data: JSONBody[InvestigatorIn]) -> Response[WriteOut]:
    """Designate a person (their principal id, e.g. person:staff:wang) who may be assigned
    report-line cases (supervisors). Assigning a case to anyone else is refused."""
    return await write(request, 201, lambda p, after: _cases(request).register_investigator(
        p, data.investigator, data.name, after_append=after))


@get("/reports/status", opt={"public": True}, tags=["cases"], summary="A report's state",
     responses=problems(400, 404))
async def report_status(state: State, code: Annotated[str, QueryParameter(
        min_length=8, max_length=64, description="the follow-up code given at intake")],
                        ) -> StatusOut:
    """For an anonymous reporter: the state of their report, and nothing else."""
    return StatusOut(state=await to_thread.run_sync(state.services.cases.status, code))


@get("/audit/access", security=SECURITY, tags=["cases"], summary="Reads of restricted material",
     responses=problems(401, 403, 503))
async def audit_access(request: Request[Any, Any, Any], state: State,
                       subject: Annotated[str | None, QueryParameter()] = None,
                       after: Annotated[int, QueryParameter(ge=-1, le=INT64)] = -1,
                       limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 200,
                       min_position: Annotated[int | None, QueryParameter(ge=0, le=INT64)] = None,
                       ) -> list[AccessEntry]:
    """Who read which restricted material (notes, case files, evidence), when, under which
    case, allowed or refused (supervisors). Page with ``after`` = the last position seen."""
    if current_principal(request).role != Role.SUPERVISOR:
        msg = "the access record is for supervisors"
        raise Forbidden(msg, rule="role")
    services = state.services
    await wait_for_projection(services, CasesView.name, min_position)

    def rows() -> list[dict[str, Any]]:
        with services.db.read() as cur:
            return access_log(cur, subject=subject, after=after, limit=limit)

    return [AccessEntry(**r) for r in await to_thread.run_sync(rows)]
