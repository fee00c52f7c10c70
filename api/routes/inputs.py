"""/api/v1/cycles/{year}/subjects/{subject}/… — the inputs of 五考两评, one resource each.

Every input is an append-only event on the subject's file, accepted only while the cycle's phase
allows it and only from a principal whose role *and* assignment allow it; refusals name the rule.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, post, put
from litestar.params import FromPath, JSONBody

from api.auth import SECURITY
from api.mechanisms import expected_version, strict_body
from api.openapi import problems
from api.routes.common import WriteOut, write
from domain.scheme import Component
from domain.text import text

Text = Annotated[str, text(max_length=2000)]
Reason = Annotated[str, text(min_length=1, max_length=2000)]
Key = Annotated[str, text(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
IsoDate = Annotated[str, text(pattern=r"^\d{4}-\d{2}-\d{2}$")]
Word = Annotated[str, text(min_length=1, max_length=64)]
INPUT_ERRORS = problems(400, 401, 403, 404, 409, 415, 422)


class LeaderReview(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    score: Decimal  # 0–100, at most two decimals
    comment: Text = ""


class IndicatorIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    indicator: Key
    value: Text
    score: Decimal | None  # null: explicitly not applicable
    evidence: Text


class ScoreIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    score: Decimal


class NoteIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    activity: Annotated[str, text(min_length=1, max_length=64, examples=["interview"])]
    notes: Annotated[str, text(min_length=1, max_length=20000)]


class AnalysisIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    dimension: Annotated[str, text(min_length=1, max_length=64, examples=["economy"])]
    score: Decimal
    rationale: Text = ""


class TargetsIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    targets: list[Annotated[str, text(min_length=1, max_length=500)]]


class TargetAssessment(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    target: Annotated[str, text(min_length=1, max_length=500)]
    achieved: bool
    evidence: Text


class EvaluationIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    session: Key
    democratic: Decimal | None = None  # 0–100 from a closed 民主测评 session
    satisfaction: Decimal | None = None  # 0–1 from a closed 民意调查


class ItemSatisfactionIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    session: Key  # the 群众认可 survey the count comes from
    item: Annotated[str, text(min_length=1, max_length=500)]  # a published target or 办实事
    satisfaction: Decimal  # 0–1


class SanctionIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code: Key  # a veto code of the scheme, e.g. "admonishment", "open-case"
    decided_on: IsoDate
    source: Text


class LiftIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    reason: Reason


class AdjustmentIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    adjustment: Key
    delta: Decimal
    component: Component | None = None
    reason: Reason
    basis: Reason
    evidence: Text


class Approval(msgspec.Struct, forbid_unknown_fields=True):
    pass


class DecisionIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    grade: Annotated[str, text(min_length=1, max_length=20)]
    reason: Reason
    minutes_ref: Annotated[str, text(min_length=1, max_length=200)]


class ReviewIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    kind: Annotated[str, text(min_length=1, max_length=64, examples=["review"])]
    reason: Reason


class ReviewDecisionIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    grade: Word | None = None  # null: the result is upheld
    reason: Reason
    authority: Reason | None = None  # the deciding body (default: the deciding principal)
    late_reason: Reason | None = None  # required when deciding after the deadline


class ExtensionIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    days: Annotated[int, msgspec.Meta(ge=1, le=366)]
    reason: Reason


def _ev(request: Request[Any, Any, Any]) -> Any:
    return request.app.state.services.evaluation


class InputController(Controller):
    path = "/cycles/{year:int}/subjects/{subject:str}"

    @post("/leader-reviews", status_code=201, security=SECURITY, tags=["leader-reviews"],
          before_request=strict_body(LeaderReview), summary="Score as a leader",
          responses=INPUT_ERRORS)
    async def leader_review(self, request: Request[Any, Any, Any], year: FromPath[int],
                            subject: FromPath[str],
                            data: JSONBody[LeaderReview]) -> Response[WriteOut]:
        """领导把关考评: a 0–100 score. City leaders score teams and principals; a principal
        (acting as ``cadre:``) scores only the deputies of their own unit; never themselves.
        One score per rater: a change is a revision (PUT with If-Match)."""
        return await write(request, 201, lambda p, after: _ev(request).leader_score(
            p, year, subject, score=data.score, comment=data.comment, after_append=after))

    @put("/leader-reviews", security=SECURITY, tags=["leader-reviews"],
         before_request=strict_body(LeaderReview), summary="Revise a leader score",
         responses=problems(400, 401, 403, 404, 409, 412, 415, 422, 428))
    async def revise_leader_review(self, request: Request[Any, Any, Any], year: FromPath[int],
                                   subject: FromPath[str],
                                   data: JSONBody[LeaderReview]) -> Response[WriteOut]:
        """Revise your score before the seal; If-Match names the file version you saw.
        The earlier score stays in the file's history."""
        version = expected_version(request)
        return await write(request, 200, lambda p, after: _ev(request).leader_score(
            p, year, subject, score=data.score, comment=data.comment, revision_of=version,
            after_append=after))

    @post("/indicators", status_code=201, security=SECURITY, tags=["indicators"],
          before_request=strict_body(IndicatorIn), summary="Verify an indicator",
          responses=INPUT_ERRORS)
    async def indicator(self, request: Request[Any, Any, Any], year: FromPath[int],
                        subject: FromPath[str], data: JSONBody[IndicatorIn]) -> Response[WriteOut]:
        """部门核对考证: value, 0–100 score (or null for not applicable) and evidence, only by
        the department that owns the indicator, for subjects in its scope, never its own unit."""
        return await write(request, 201, lambda p, after: _ev(request).indicator_score(
            p, year, subject, indicator=data.indicator, value=data.value, score=data.score,
            evidence=data.evidence, after_append=after))

    @post("/inspections/score", status_code=201, security=SECURITY, tags=["inspections"],
          before_request=strict_body(ScoreIn), summary="The assessment team's score",
          responses=INPUT_ERRORS)
    async def inspection_score(self, request: Request[Any, Any, Any], year: FromPath[int],
                               subject: FromPath[str],
                               data: JSONBody[ScoreIn]) -> Response[WriteOut]:
        """组织系统考核: the assessment team's 0–100 score after hearing, talks, checks, visits."""
        return await write(request, 201, lambda p, after: _ev(request).inspection_score(
            p, year, subject, score=data.score, after_append=after))

    @post("/inspections/notes", status_code=201, security=SECURITY, tags=["inspections"],
          before_request=strict_body(NoteIn), summary="Record restricted notes",
          responses=INPUT_ERRORS)
    async def inspection_note(self, request: Request[Any, Any, Any], year: FromPath[int],
                              subject: FromPath[str], data: JSONBody[NoteIn]) -> Response[WriteOut]:
        """听、谈、看、议 records (hearing, interview, records-check, site-visit, deliberation).
        Restricted: readable by the assessment team and supervisors only."""
        return await write(request, 201, lambda p, after: _ev(request).inspection_note(
            p, year, subject, activity=data.activity, notes=data.notes, after_append=after))

    @post("/analysis", status_code=201, security=SECURITY, tags=["analysis"],
          before_request=strict_body(AnalysisIn), summary="Score a performance dimension",
          responses=INPUT_ERRORS)
    async def analysis(self, request: Request[Any, Any, Any], year: FromPath[int],
                       subject: FromPath[str], data: JSONBody[AnalysisIn]) -> Response[WriteOut]:
        """实绩分析评估 by the assessment team. Teams: economy, social-undertakings,
        civilisation, cadre-team, innovation. Cadres: workload, difficulty, effect,
        personal-role."""
        return await write(request, 201, lambda p, after: _ev(request).analysis_score(
            p, year, subject, dimension=data.dimension, score=data.score,
            rationale=data.rationale, after_append=after))

    @post("/targets", status_code=201, security=SECURITY, tags=["commitments"],
          before_request=strict_body(TargetsIn), summary="Publish committed targets",
          responses=INPUT_ERRORS)
    async def targets(self, request: Request[Any, Any, Any], year: FromPath[int],
                      subject: FromPath[str], data: JSONBody[TargetsIn]) -> Response[WriteOut]:
        """责任承诺考实: the unit's annual targets, published once."""
        return await write(request, 201, lambda p, after: _ev(request).publish_targets(
            p, year, subject, targets=data.targets, after_append=after))

    @post("/targets/assessments", status_code=201, security=SECURITY, tags=["commitments"],
          before_request=strict_body(TargetAssessment), summary="Assess a target",
          responses=INPUT_ERRORS)
    async def assess(self, request: Request[Any, Any, Any], year: FromPath[int],
                     subject: FromPath[str],
                     data: JSONBody[TargetAssessment]) -> Response[WriteOut]:
        """Whether a committed target was achieved, with the evidence reference."""
        return await write(request, 201, lambda p, after: _ev(request).assess_target(
            p, year, subject, target=data.target, achieved=data.achieved,
            evidence=data.evidence, after_append=after))

    @post("/evaluations", status_code=201, security=SECURITY, tags=["evaluations"],
          before_request=strict_body(EvaluationIn), summary="Record a session's result",
          responses=INPUT_ERRORS)
    async def evaluation(self, request: Request[Any, Any, Any], year: FromPath[int],
                         subject: FromPath[str],
                         data: JSONBody[EvaluationIn]) -> Response[WriteOut]:
        """The democratic-evaluation score (0–100) and/or survey satisfaction (0–1) of a closed
        session, as the composite's 民主测评 and 民意调查 inputs."""
        return await write(request, 201, lambda p, after: _ev(request).record_evaluation(
            p, year, subject, session=data.session, democratic=data.democratic,
            satisfaction=data.satisfaction, after_append=after))

    @post("/targets/satisfaction", status_code=201, security=SECURITY, tags=["commitments"],
          before_request=strict_body(ItemSatisfactionIn),
          summary="Record the survey's satisfaction with a target", responses=INPUT_ERRORS)
    async def item_satisfaction(self, request: Request[Any, Any, Any], year: FromPath[int],
                                subject: FromPath[str],
                                data: JSONBody[ItemSatisfactionIn]) -> Response[WriteOut]:
        """群众认可程度: the survey's satisfaction (0–1) with one of the unit's published
        targets or 办实事 items (organizer, from the count). Below the scheme's
        ``satisfaction_threshold`` the item does not count as achieved (群众满意度达不到要求
        的，一律不算作政绩); the card lists it with its rate. A later count replaces it."""
        return await write(request, 201, lambda p, after: _ev(request).rate_item(
            p, year, subject, session=data.session, item=data.item,
            satisfaction=data.satisfaction, after_append=after))

    @post("/sanctions", status_code=201, security=SECURITY, tags=["sanctions"],
          before_request=strict_body(SanctionIn), summary="Record a sanction or open case",
          responses=INPUT_ERRORS)
    async def sanction(self, request: Request[Any, Any, Any], year: FromPath[int],
                       subject: FromPath[str], data: JSONBody[SanctionIn]) -> Response[WriteOut]:
        """A sanction or open case in the year (imported from discipline systems); it caps,
        forces or suppresses the grade as the scheme's veto of that code says."""
        return await write(request, 201, lambda p, after: _ev(request).record_sanction(
            p, year, subject, code=data.code, decided_on=data.decided_on, source=data.source,
            after_append=after))

    @post("/sanctions/{code:str}/lift", status_code=201, security=SECURITY,
          tags=["sanctions"], before_request=strict_body(LiftIn), summary="Lift a sanction",
          responses=INPUT_ERRORS)
    async def lift(self, request: Request[Any, Any, Any], year: FromPath[int],
                   subject: FromPath[str], code: FromPath[str],
                   data: JSONBody[LiftIn]) -> Response[WriteOut]:
        """A case outcome: the case closed without sanction (or the sanction was annulled)."""
        return await write(request, 201, lambda p, after: _ev(request).lift_sanction(
            p, year, subject, code=code, reason=data.reason, after_append=after))

    @post("/adjustments", status_code=201, security=SECURITY, tags=["adjustments"],
          before_request=strict_body(AdjustmentIn), summary="Propose a score adjustment",
          responses=INPUT_ERRORS)
    async def propose(self, request: Request[Any, Any, Any], year: FromPath[int],
                      subject: FromPath[str],
                      data: JSONBody[AdjustmentIn]) -> Response[WriteOut]:
        """加减分 on one component or the total, with reason, basis and evidence. It counts
        only once approved by another person."""
        return await write(request, 201, lambda p, after: _ev(request).propose_adjustment(
            p, year, subject, adjustment=data.adjustment, delta=data.delta,
            component=data.component, reason=data.reason, basis=data.basis,
            evidence=data.evidence, after_append=after))

    @post("/adjustments/{adjustment:str}/approval", status_code=201, security=SECURITY,
          tags=["adjustments"], before_request=strict_body(Approval),
          summary="Approve an adjustment", responses=INPUT_ERRORS)
    async def approve(self, request: Request[Any, Any, Any], year: FromPath[int],
                      subject: FromPath[str], adjustment: FromPath[str],
                      data: JSONBody[Approval]) -> Response[WriteOut]:
        """Approval by an organizer other than the proposer (four eyes)."""
        return await write(request, 201, lambda p, after: _ev(request).approve_adjustment(
            p, year, subject, adjustment=adjustment, after_append=after))

    @post("/decisions", status_code=201, security=SECURITY, tags=["grading"],
          before_request=strict_body(DecisionIn), summary="Committee decision on the grade",
          responses=INPUT_ERRORS)
    async def decide(self, request: Request[Any, Any, Any], year: FromPath[int],
                     subject: FromPath[str], data: JSONBody[DecisionIn]) -> Response[WriteOut]:
        """The committee sets the grade, with a reason and a minutes reference, after the seal.
        Refused if it breaks the pool's quota, lifts a veto's cap, or grades a no-grade case."""
        return await write(request, 201, lambda p, after: _ev(request).decide(
            p, year, subject, grade=data.grade, reason=data.reason,
            minutes_ref=data.minutes_ref, after_append=after))

    @post("/reviews", status_code=201, security=SECURITY, tags=["appeals"],
          before_request=strict_body(ReviewIn), summary="Ask for a review or appeal",
          responses=INPUT_ERRORS)
    async def review(self, request: Request[Any, Any, Any], year: FromPath[int],
                     subject: FromPath[str], data: JSONBody[ReviewIn]) -> Response[WriteOut]:
        """复核 (kind "review") within the scheme's review window after notification, or 申诉
        (kind "appeal"); only the subject itself, acting as ``cadre:`` or ``unit:``."""
        return await write(request, 201, lambda p, after: _ev(request).request_review(
            p, year, subject, kind=data.kind, reason=data.reason, after_append=after))

    @post("/reviews/{kind:str}/decision", status_code=201, security=SECURITY, tags=["appeals"],
          before_request=strict_body(ReviewDecisionIn), summary="Decide a review or appeal",
          responses=INPUT_ERRORS)
    async def decide_review(self, request: Request[Any, Any, Any], year: FromPath[int],
                            subject: FromPath[str], kind: FromPath[str],
                            data: JSONBody[ReviewDecisionIn]) -> Response[WriteOut]:
        """Uphold (grade null) or change the grade. A change is checked like a committee
        decision (grades, vetoes, quota) and published at once as a correction (更正) of the
        results, in the same transaction. A decision after its deadline (复核 30 days after
        filing, 申诉 60, by the scheme) must give ``late_reason``."""
        services = request.app.state.services
        return await write(request, 201, lambda p, after: _ev(request).decide_review(
            p, year, subject, kind=kind, grade=data.grade, reason=data.reason,
            authority=data.authority, late_reason=data.late_reason,
            head_of=services.stream_heads, after_append=after))

    @post("/reviews/{kind:str}/extension", status_code=201, security=SECURITY,
          tags=["appeals"], before_request=strict_body(ExtensionIn),
          summary="Extend an appeal's decision deadline", responses=INPUT_ERRORS)
    async def extend_review(self, request: Request[Any, Any, Any], year: FromPath[int],
                            subject: FromPath[str], kind: FromPath[str],
                            data: JSONBody[ExtensionIn]) -> Response[WriteOut]:
        """A 申诉 may be extended once, before its deadline, by at most the scheme's
        ``appeal_extension_days`` (committee)."""
        return await write(request, 201, lambda p, after: _ev(request).extend_review(
            p, year, subject, kind=kind, days=data.days, reason=data.reason,
            after_append=after))
