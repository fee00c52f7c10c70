"""/api/v1/cycles/{year}/… — 审定 and 公示: the committee's approval of the whole proposal,
objections (异议) during the public notice, and their decisions (docs/evaluation.md)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from anyio import to_thread
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from api.auth import SECURITY, current_principal
from api.mechanisms import strict_body
from api.openapi import problems
from api.routes.common import WriteOut, write
from domain.errors import Forbidden
from domain.text import text
from service.audience import EVALUATORS

Text = Annotated[str, text(min_length=1, max_length=2000)]
Fingerprint = Annotated[str, text(pattern=r"^[0-9a-f]{64}$")]


class ApprovalIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    results_fingerprint: Fingerprint  # the proposal the committee read (GET …/proposal)
    minutes_ref: Text  # e.g. 市委常委会会议纪要〔2026〕3号
    authority: Text  # e.g. 市委常委会


class ProposalOut(msgspec.Struct, kw_only=True):
    year: int
    phase: str
    results_fingerprint: str  # the proposal as it stands (after publication: as published)
    approved_fingerprint: str | None  # the proposal the committee last approved (审定)
    approved: bool  # the approval covers the proposal as it stands


def _services(request: Request[Any, Any, Any]) -> Any:
    return request.app.state.services


def _evaluators_only(request: Request[Any, Any, Any], what: str) -> None:
    if current_principal(request).role not in EVALUATORS:
        msg = f"{what} is for the organizer, the committee and supervisors"
        raise Forbidden(msg, rule="role")


class PublicationController(Controller):
    path = "/cycles/{year:int}"
    tags = ["grading"]  # noqa: RUF012 -- Litestar's own attribute

    @get("/proposal", security=SECURITY, summary="The grading proposal's fingerprint (审定)",
         responses=problems(401, 403, 404, 409))
    async def proposal(self, request: Request[Any, Any, Any],
                       year: FromPath[int]) -> ProposalOut:
        """The fingerprint of the grading proposal as it stands — every pool's results from
        the sealed evidence and the committee's decisions since — and whether the
        committee's approval (审定) covers it. The pools themselves: ``GET …/results``.
        Organizer, committee and supervisors."""
        _evaluators_only(request, "the proposal")
        services = _services(request)
        cycle, fingerprint = await to_thread.run_sync(services.evaluation.proposal, year,
                                                      services.stream_heads)
        return ProposalOut(year=year, phase=cycle.phase.value, results_fingerprint=fingerprint,
                           approved_fingerprint=cycle.approved_fingerprint,
                           approved=cycle.approved_fingerprint == fingerprint)

    @post("/approval", status_code=201, security=SECURITY, before_request=strict_body(ApprovalIn),
          summary="Approve the whole proposal (审定)",
          responses=problems(400, 401, 403, 404, 409, 415, 422))
    async def approve(self, request: Request[Any, Any, Any], year: FromPath[int],
                      data: JSONBody[ApprovalIn]) -> Response[WriteOut]:
        """审定: the committee approves the proposal whose fingerprint it read, with the
        minutes and the authority. Refused when the proposal changed since
        (``approval.current-proposal``). Publication needs an approval of exactly the
        results it publishes (``publication.approved``, ``publication.approved-unchanged``):
        a committee decision after the approval needs a new one."""
        services = _services(request)
        return await write(request, 201, lambda p, after: services.evaluation.approve(
            p, year, services.stream_heads, fingerprint=data.results_fingerprint,
            minutes_ref=data.minutes_ref, authority=data.authority, after_append=after))
