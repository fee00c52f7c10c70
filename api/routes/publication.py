"""/api/v1/cycles/{year}/… — 审定, 公示 and 反馈: the committee's approval of the whole proposal,
objections (异议) during the public notice and their decisions, and the notification and
feedback of each result (集中点评, 书面通知, 个别反馈). docs/evaluation.md has the rules."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from anyio import to_thread
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from api.auth import SECURITY, current_principal
from api.mechanisms import strict_body
from api.openapi import problems
from api.routes.common import CaseOpened, WriteOut, write, write_opening_case
from domain.cases import Channel
from domain.errors import Forbidden
from domain.feedback import CentralReview, SubjectFeedback
from domain.text import text
from service.audience import EVALUATORS
from service.cases import follow_up_code
from service.evaluation import NoticeStatus
from service.feedback import FeedbackDue

Text = Annotated[str, text(min_length=1, max_length=2000)]
Fingerprint = Annotated[str, text(pattern=r"^[0-9a-f]{64}$")]


class ApprovalIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    results_fingerprint: Fingerprint  # the proposal the committee read (GET …/proposal)
    minutes_ref: Text  # e.g. 市委常委会会议纪要〔2026〕3号
    authority: Text  # e.g. 市委常委会


class ObjectionIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    channel: Channel  # how it arrived: hotline, mailbox, website
    summary: Text
    reporter: Annotated[str, text(max_length=200)] | None = None  # None: anonymous


class ObjectionOut(CaseOpened, kw_only=True):
    """The write's answer (the subject's file: ``stream_id``, ``version``, ``receipt`` with
    both streams' leaves), then the case it opened (investigated like a report)."""


class ObjectionDecisionIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    outcome: Literal["dismissed", "upheld"]  # 驳回 / 成立
    grade: Annotated[str, text(min_length=1, max_length=20)] | None = None  # upheld: new grade
    reason: Text
    minutes_ref: Text
    authority: Text  # e.g. 市委常委会


class NoticeStatusOut(msgspec.Struct, kw_only=True):
    year: int
    opens_on: str
    closes_on: str
    items: list[NoticeStatus]


class CentralReviewIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    group: Annotated[str, text(min_length=1, max_length=64)] | None = None  # None: all groups
    on: Annotated[str, text(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    by: Text  # who held it, e.g. 市委组织部部长 李某
    summary: Text  # the common problems reviewed


class FeedbackIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    kind: Literal["notification", "feedback"]  # 书面通知 / 个别反馈
    on: Annotated[str, text(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    by: Text  # who notified or fed back
    summary: Text


class FeedbackOut(msgspec.Struct, kw_only=True):
    year: int
    subject: str
    reviews: list[CentralReview]  # the 集中点评 that cover the subject's group
    feedback: list[SubjectFeedback]


class FeedbackDueOut(msgspec.Struct, kw_only=True):
    year: int
    items: list[FeedbackDue]


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

    @post("/subjects/{subject:str}/objections", status_code=201, security=SECURITY,
          before_request=strict_body(ObjectionIn), tags=["results"],
          summary="Lodge an objection to a grade on the notice (公示异议)",
          responses=problems(400, 401, 403, 404, 409, 415, 422))
    async def object_to(self, request: Request[Any, Any, Any], year: FromPath[int],
                        subject: FromPath[str], data: JSONBody[ObjectionIn],
                        ) -> Response[ObjectionOut]:
        """An objection to a grade the notice (公示) lists, taken by intake during the notice
        window (``objection.window``) — by hotline, mailbox or website, anonymous allowed as
        for a report (a follow-up code, shown once). It opens a case about the subject and is
        recorded on the subject's file: the grade is final only when the window has closed
        and every objection on it is decided."""
        principal = current_principal(request)
        services = _services(request)
        code = None if data.reporter else follow_up_code()

        def command(after: Any) -> Any:
            return services.evaluation.lodge_objection(
                principal, year, subject, channel=data.channel, summary=data.summary,
                reporter=data.reporter, code=code, after_append=after)

        return await write_opening_case(
            request, ObjectionOut, command, code,
            case_of=lambda w: next(leaf.stream_id for leaf in w.leaves
                                   if leaf.stream_id != w.stream_id))

    @post("/subjects/{subject:str}/objections/{case:str}/decision", status_code=201,
          security=SECURITY, before_request=strict_body(ObjectionDecisionIn), tags=["results"],
          summary="Decide an objection (公示异议)",
          responses=problems(400, 401, 403, 404, 409, 415, 422))
    async def decide_objection(self, request: Request[Any, Any, Any], year: FromPath[int],
                               subject: FromPath[str], case: FromPath[str],
                               data: JSONBody[ObjectionDecisionIn]) -> Response[WriteOut]:
        """The committee decides: dismissed (驳回), or upheld (成立). An upheld objection with
        a ``grade`` is a committee decision on the grade — checked against the grades, vetoes
        and quota — published at once as a correction (更正, basis ``objection``)."""
        services = _services(request)
        return await write(request, 201, lambda p, after: services.evaluation.decide_objection(
            p, year, subject, case, outcome=data.outcome, grade=data.grade, reason=data.reason,
            minutes_ref=data.minutes_ref, authority=data.authority,
            head_of=services.stream_heads, after_append=after))

    @get("/notice/status", security=SECURITY, tags=["results"],
         summary="The notice's grades, their objections, and which are final",
         responses=problems(401, 403, 404, 409))
    async def notice_status(self, request: Request[Any, Any, Any],
                            year: FromPath[int]) -> NoticeStatusOut:
        """Every grade the notice (公示) lists, its objections (case and outcome) and
        whether it is final (the window closed, every objection decided). Organizer,
        committee and supervisors: objections name no objector here."""
        principal = current_principal(request)
        ev = _services(request).evaluation

        def run() -> NoticeStatusOut:
            items = ev.notice_status(principal, year)
            opens, closes = ev.notice_window(ev.cycle(year))
            return NoticeStatusOut(year=year, opens_on=opens.isoformat(),
                                   closes_on=closes.isoformat(), items=items)

        return await to_thread.run_sync(run)

    @post("/feedback/reviews", status_code=201, security=SECURITY, tags=["use of results"],
          before_request=strict_body(CentralReviewIn), summary="Record a 集中点评",
          responses=problems(400, 401, 403, 404, 409, 415, 422))
    async def central_review(self, request: Request[Any, Any, Any], year: FromPath[int],
                             data: JSONBody[CentralReviewIn]) -> Response[WriteOut]:
        """集中点评: the meeting that reviewed the common problems — once for the cycle (no
        ``group``) and once per comparison group; by the organizer, after publication."""
        notifications = _services(request).notifications
        return await write(request, 201, lambda p, after: notifications.hold_review(
            p, year, group=data.group, on=data.on, by=data.by, summary=data.summary,
            after_append=after))

    @post("/subjects/{subject:str}/feedback", status_code=201, security=SECURITY,
          tags=["use of results"], before_request=strict_body(FeedbackIn),
          summary="Record a written notification or 个别反馈",
          responses=problems(400, 401, 403, 404, 409, 415, 422))
    async def feed_back(self, request: Request[Any, Any, Any], year: FromPath[int],
                        subject: FromPath[str], data: JSONBody[FeedbackIn]) -> Response[WriteOut]:
        """书面通知 (``notification``, once) or 个别反馈 (``feedback``): who, when, and a
        summary; by the organizer, after publication, dated from the notification to today."""
        notifications = _services(request).notifications
        return await write(request, 201, lambda p, after: notifications.feed_back(
            p, year, subject, kind=data.kind, on=data.on, by=data.by, summary=data.summary,
            after_append=after))

    @get("/subjects/{subject:str}/feedback", security=SECURITY, tags=["use of results"],
         summary="A subject's notification and feedback", responses=problems(401, 403, 404))
    async def feedback(self, request: Request[Any, Any, Any], year: FromPath[int],
                       subject: FromPath[str]) -> FeedbackOut:
        """The 集中点评 that cover the subject's group and its own notification and 个别反馈.
        For the subject itself (once published), the organizer, the committee, supervisors
        and investigators whose case covers it — as its card (docs/evaluation.md)."""
        services = _services(request)
        cycle = await to_thread.run_sync(services.evaluation.cycle, year)
        await to_thread.run_sync(services.cards.check, current_principal(request), "feedback",
                                 cycle, subject, "detail")
        reviews, given = await to_thread.run_sync(services.notifications.of, year, subject)
        return FeedbackOut(year=year, subject=subject, reviews=reviews, feedback=given)

    @get("/feedback/due", security=SECURITY, tags=["use of results"],
         summary="Subjects not yet notified or fed back", responses=problems(401, 403, 404, 409))
    async def feedback_due(self, request: Request[Any, Any, Any],
                           year: FromPath[int]) -> FeedbackDueOut:
        """Every subject of the published cycle without its written notification or its
        个别反馈 yet. Organizer, committee and supervisors."""
        items = await to_thread.run_sync(_services(request).notifications.due,
                                         current_principal(request), year)
        return FeedbackDueOut(year=year, items=items)
