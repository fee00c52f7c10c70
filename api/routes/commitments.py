"""/api/v1/cycles/{year}/commitments — 责任承诺考实: each unit's public commitments.

A unit publishes its targets at the start of the year (its own principal, or the organizer on
its behalf); changes after that are amendments with a reason, shown as history; anyone signed in
may challenge a target (the challenge is a case); the assessment team assesses what was
achieved in the scoring phase. The public reads every unit's commitments — never an achieved
value, a completion share or a score.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from anyio import to_thread
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from api.auth import SECURITY, current_principal
from api.mechanisms import strict_body
from api.openapi import problems
from api.routes.common import CaseOpened, WriteOut, write, write_opening_case
from domain.commitments import Amendment, Target, UnitCommitments
from domain.text import text
from service.cases import follow_up_code
from service.principals import Role

if TYPE_CHECKING:
    from service.runtime import Services

Reason = Annotated[str, text(min_length=1, max_length=2000)]
Evidence = Annotated[str, text(min_length=1, max_length=2000)]
ERRORS = problems(400, 401, 403, 404, 409, 415, 422)


class CommitmentsIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    targets: list[Target]


class AmendmentIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code: Annotated[str, text(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    target: Target | None  # null: the target is withdrawn
    reason: Reason


class ChallengeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    summary: Annotated[str, text(min_length=1, max_length=4000)]
    # intake only: who challenged (kept as the reporter's identity); absent: anonymous
    reporter: Annotated[str, text(min_length=1, max_length=200)] | None = None


class ChallengeOut(CaseOpened, kw_only=True):
    """A challenge: its case is the stream written (``case_id`` = ``stream_id``)."""


class AchievementIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    achieved: Decimal  # in the target's unit of measure
    evidence: Evidence


class TargetSatisfactionIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    session: Annotated[str, text(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    satisfaction: Decimal  # 0–1, the 群众认可 survey's count


class CommitmentsOut(msgspec.Struct, kw_only=True):
    """One unit's commitments as the public sees them: targets, history and challenges."""

    year: int
    unit: str
    published_on: str
    on_behalf: bool  # entered by the organizer for the unit
    version: int
    targets: list[Target]
    amendments: list[Amendment]
    challenges: dict[str, int]  # target code -> how many challenges were entered (cases)


class CommitmentsList(msgspec.Struct, kw_only=True):
    year: int
    units: list[CommitmentsOut]


def public_view(c: UnitCommitments) -> CommitmentsOut:
    return CommitmentsOut(year=c.year, unit=c.unit, published_on=c.published_on,
                          on_behalf=c.on_behalf, version=c.version,
                          targets=list(c.targets.values()), amendments=list(c.amendments),
                          challenges={k: len(v) for k, v in sorted(c.challenges.items())})


class CommitmentController(Controller):
    path = "/cycles/{year:int}/commitments"
    tags = ["commitments"]  # noqa: RUF012 -- Litestar's own attribute

    @get("/", opt={"public": True}, summary="Every unit's public commitments",
         responses=problems(404))
    async def listing(self, state: State, year: FromPath[int]) -> CommitmentsList:
        """公开承诺: every unit's targets of the cycle, responsible cadres and 共绩 attribution,
        with amendments and how many challenges each target has. No achieved values, no
        scores."""
        services: Services = state.services

        def run() -> list[UnitCommitments]:
            return services.commitments.all_of(services.evaluation.cycle(year))

        found = await to_thread.run_sync(run)
        return CommitmentsList(year=year, units=[public_view(c) for c in found])

    @get("/{unit:str}", opt={"public": True}, summary="A unit's public commitments",
         responses=problems(404))
    async def one(self, state: State, year: FromPath[int], unit: FromPath[str]
                  ) -> CommitmentsOut:
        """One unit's commitments and their history (every amendment with its reason)."""
        found = await to_thread.run_sync(state.services.commitments.require, year, unit)
        return public_view(found)

    @post("/{unit:str}", status_code=201, security=SECURITY,
          before_request=strict_body(CommitmentsIn), summary="Publish a unit's commitments",
          responses=ERRORS)
    async def publish(self, request: Request[Any, Any, Any], year: FromPath[int],
                      unit: FromPath[str], data: JSONBody[CommitmentsIn]) -> Response[WriteOut]:
        """年初公开承诺: the unit's targets, each with its responsible cadres (of the unit, on
        the roster) and, for a shared achievement (共绩), its partners and either one lead unit
        or shares summing to 1. Once, before scoring opens and by the scheme's
        ``commitments.due``; by the unit's own principal or the organizer on its behalf."""
        commitments = request.app.state.services.commitments
        return await write(request, 201, lambda p, after: commitments.publish(
            p, year, unit, targets=data.targets, after_append=after))

    @post("/{unit:str}/amendments", status_code=201, security=SECURITY,
          before_request=strict_body(AmendmentIn), summary="Amend a published commitment",
          responses=ERRORS)
    async def amend(self, request: Request[Any, Any, Any], year: FromPath[int],
                    unit: FromPath[str], data: JSONBody[AmendmentIn]) -> Response[WriteOut]:
        """Add, change (same code) or withdraw (``target: null``) a target, with a reason;
        until the target is assessed and before the seal. Shown in the public history."""
        commitments = request.app.state.services.commitments
        return await write(request, 201, lambda p, after: commitments.amend(
            p, year, unit, data.code, target=data.target, reason=data.reason,
            after_append=after))

    @post("/{unit:str}/targets/{code:str}/challenges", status_code=201, security=SECURITY,
          before_request=strict_body(ChallengeIn), summary="Challenge a published target",
          responses=ERRORS)
    async def challenge(self, request: Request[Any, Any, Any], year: FromPath[int],
                        unit: FromPath[str], code: FromPath[str],
                        data: JSONBody[ChallengeIn]) -> Response[ChallengeOut]:
        """Anyone signed in: the challenge becomes a case (channel ``challenge``) about the
        unit's team; ``stream_id`` is the case's id. Who challenged is kept as a reporter's
        identity (intake only); the commitments show only that a case exists. The intake role
        enters a challenge received by hotline, mailbox or website for someone else: with
        ``reporter``, or anonymous (without): as a report, no identity is kept and the answer
        carries a follow-up code for ``GET /api/v1/reports/status``, shown only here (and in
        the replay to the same Idempotency-Key)."""
        services = request.app.state.services
        principal = current_principal(request)
        code_ = follow_up_code() if (
            principal.role == Role.INTAKE and data.reporter is None) else None

        def command(after: Any) -> Any:
            return services.commitments.challenge(
                principal, year, unit, code, summary=data.summary, reporter=data.reporter,
                follow_up=code_, after_append=after)[0]

        return await write_opening_case(request, ChallengeOut, command, code_)

    @post("/{unit:str}/targets/{code:str}/satisfaction", status_code=201, security=SECURITY,
          before_request=strict_body(TargetSatisfactionIn),
          summary="Record the survey's satisfaction with a target", responses=ERRORS)
    async def rate(self, request: Request[Any, Any, Any], year: FromPath[int],
                   unit: FromPath[str], code: FromPath[str],
                   data: JSONBody[TargetSatisfactionIn]) -> Response[WriteOut]:
        """群众认可程度: the survey's satisfaction (0–1) with one published target, from the
        count of a named session (organizer, scoring phase); a later count replaces it. Under
        an "attributed-completion" scheme a target rated below ``satisfaction_threshold`` does
        not count as 实绩 for any team it credits (群众满意度达不到要求的，一律不算作政绩):
        its completion counts 0, its credit stays; the card shows the rate. Not public."""
        commitments = request.app.state.services.commitments
        return await write(request, 201, lambda p, after: commitments.rate(
            p, year, unit, code, session=data.session, satisfaction=data.satisfaction,
            after_append=after))

    @post("/{unit:str}/targets/{code:str}/achievement", status_code=201, security=SECURITY,
          before_request=strict_body(AchievementIn), summary="Assess a target's achievement",
          responses=ERRORS)
    async def assess(self, request: Request[Any, Any, Any], year: FromPath[int],
                     unit: FromPath[str], code: FromPath[str],
                     data: JSONBody[AchievementIn]) -> Response[WriteOut]:
        """The achieved value with its evidence (assessment team or organizer, scoring phase);
        its completion share follows the stated rule (docs/evaluation.md). Under a scheme with
        ``commitments.derivation = "attributed-completion"`` it counts in the commitments
        component of every team it credits."""
        commitments = request.app.state.services.commitments
        return await write(request, 201, lambda p, after: commitments.assess(
            p, year, unit, code, achieved=data.achieved, evidence=data.evidence,
            after_append=after))
