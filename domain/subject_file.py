"""A subject's file for one cycle: every fact that can move its result, as events.

Leader scores, indicator scores, the assessment team's score and restricted notes, analysis
scores, targets and their achievement, evaluation-session results, sanctions, adjustments
(proposed by one person, approved by another), committee decisions, notification, review and
appeal. Nothing is changed in place: a revision is a new event and the latest one counts.
``evidence()`` turns the file into the score function's input.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.commitments import Credit, commitment_score
from domain.errors import Conflict, Forbidden, InvalidInput
from domain.scheme import Component, Scheme, SubjectKind
from domain.scoring import (
    SCORE_FUNCTION_VERSION,
    Adjustment,
    CommitteeDecision,
    IndicatorScore,
    PoolEvidence,
    PoolResult,
    SubjectEvidence,
    TargetItem,
    score_pool,
)
from domain.team_review import TeamAnalysis, team_analysis

TEAM_DIMENSIONS = ("economy", "social-undertakings", "civilisation", "cadre-team", "innovation")
CADRE_DIMENSIONS = ("workload", "difficulty", "effect", "personal-role")
INSPECTION_ACTIVITIES = ("hearing", "interview", "records-check", "site-visit", "deliberation")
FINDING_ACTIVITIES = ("hear", "talk", "look", "deliberate")  # 听、谈、看、议


class SubjectFile(Aggregate):
    """被考核对象档案: the evidence stream of one subject in one cycle."""

    TOPIC = "kaoping/SubjectFile"

    class Created(Aggregate.Created):
        TOPIC = "kaoping/SubjectFile.Created"  # base only; never stored

    class Opened(Created):
        TOPIC = "kaoping/SubjectFile.Opened.v1"
        year: int
        subject: str
        code: str
        kind: str
        group: str
        actor: str

    class TargetsPublished(Aggregate.Event):
        TOPIC = "kaoping/SubjectFile.TargetsPublished.v1"
        targets: list[str]
        actor: str

    class TargetAssessed(Aggregate.Event):
        TOPIC = "kaoping/SubjectFile.TargetAssessed.v1"
        target: str
        achieved: bool
        evidence: str
        actor: str

    class CommitmentsCredited(Aggregate.Event):
        """A team's credit in every public commitment it shares in (its own targets and its
        共绩 shares) as they stand now: what "attributed-completion" schemes count."""

        TOPIC = "kaoping/SubjectFile.CommitmentsCredited.v1"
        credited: list[Credit]
        actor: str

    class LeaderScored(Aggregate.Event):
        TOPIC = "kaoping/SubjectFile.LeaderScored.v1"
        # v2 adds post: the title of the post the leader scored in (the scheme weighs the
        # score by it, kaoping-score/4); None for a principal scoring a deputy. Stored v1
        # events read as None (weight 1).
        class_version = 2
        rater: str
        score: Decimal
        comment: str
        actor: str
        post: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["post"] = None

    class ItemSatisfactionRecorded(Aggregate.Event):
        """群众认可: the survey's satisfaction (0–1) with one committed target or 办实事 item
        of the unit, from a count held in a named session. Below the scheme's threshold the
        item does not count as achieved (kaoping-score/4)."""

        TOPIC = "kaoping/SubjectFile.ItemSatisfactionRecorded.v1"
        session: str
        item: str
        satisfaction: Decimal
        actor: str

    class IndicatorScored(Aggregate.Event):
        TOPIC = "kaoping/SubjectFile.IndicatorScored.v1"
        indicator: str
        department: str
        value: str
        score: Decimal | None  # None: not applicable, stated explicitly
        evidence: str
        actor: str

    class InspectionScored(Aggregate.Event):
        TOPIC = "kaoping/SubjectFile.InspectionScored.v1"
        score: Decimal
        actor: str

    class InspectionNoted(Aggregate.Event):
        """Restricted: readable by the assessment team and supervisors only."""

        TOPIC = "kaoping/SubjectFile.InspectionNoted.v1"
        activity: str
        notes: str
        actor: str

    class AnalysisScored(Aggregate.Event):
        TOPIC = "kaoping/SubjectFile.AnalysisScored.v1"
        dimension: str
        score: Decimal
        rationale: str
        actor: str

    class TeamAssigned(Aggregate.Event):
        """考核组: the assessment-team members assigned to this subject and their leader (组长).
        A new assignment replaces the last; scores of members no longer assigned stop counting
        (they stay in the file)."""

        TOPIC = "kaoping/SubjectFile.TeamAssigned.v1"
        members: list[str]
        leader: str
        actor: str

    class DocumentSubmitted(Aggregate.Event):
        """A document of the subject (工作总结, 述职述廉报告, 自我评价), by the SHA-256 of its
        bytes (stored once, by hash, in the same transaction). A later one of the same kind
        supersedes it; both stay in the file."""

        TOPIC = "kaoping/SubjectFile.DocumentSubmitted.v1"
        kind: str
        sha256: str
        size: int
        media_type: str
        name: str
        actor: str

    class FindingRecorded(Aggregate.Event):
        """听谈看议: a structured finding of one activity by an assigned member, referring to
        the subject's documents by hash. Restricted like the inspection notes."""

        TOPIC = "kaoping/SubjectFile.FindingRecorded.v1"
        activity: str  # hear | talk | look | deliberate
        member: str
        summary: str
        strengths: list[str]
        problems: list[str]
        documents: list[str]
        actor: str

    class MemberScored(Aggregate.Event):
        """实绩分析 by one assessment-team member: a 0–100 score of one dimension (集体议绩
        aggregates the members' latest scores by the scheme's rule)."""

        TOPIC = "kaoping/SubjectFile.MemberScored.v1"
        member: str
        dimension: str
        score: Decimal
        rationale: str
        actor: str

    class Remarked(Aggregate.Event):
        """评语: the team's qualitative conclusion on the subject, by the team's leader; the
        latest one is shown on the card."""

        TOPIC = "kaoping/SubjectFile.Remarked.v1"
        remark: str
        member: str
        actor: str

    class EvaluationRecorded(Aggregate.Event):
        """The result of a closed 民主测评 / 民意调查 session for this subject."""

        TOPIC = "kaoping/SubjectFile.EvaluationRecorded.v1"
        # v2 adds closed_version: the version of the session's Closed event when the score
        # was recorded by closing a ballot session in this system (its ballots are then part
        # of the evidence); None when an organiser entered the result of a count held
        # elsewhere (a paper ballot). Stored v1 events read as None.
        class_version = 2
        session: str
        democratic: Decimal | None
        satisfaction: Decimal | None
        actor: str
        closed_version: int | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["closed_version"] = None

    class EvaluationWithheld(Aggregate.Event):
        """A ballot session over this subject gave it no result: its close failed quorum or
        had fewer than k valid ballots for it, or the session was voided after its close
        (whatever score it recorded here is withdrawn). ``source_version`` is the version of
        the session's Closed or Voided event."""

        TOPIC = "kaoping/SubjectFile.EvaluationWithheld.v1"
        session: str
        source_version: int
        reason: str  # "quorum-failed", "too-few-valid" or "session-voided"
        actor: str

    class SanctionRecorded(Aggregate.Event):
        TOPIC = "kaoping/SubjectFile.SanctionRecorded.v1"
        code: str
        decided_on: str
        source: str
        actor: str

    class SanctionLifted(Aggregate.Event):
        TOPIC = "kaoping/SubjectFile.SanctionLifted.v1"
        code: str
        reason: str
        actor: str

    class AdjustmentProposed(Aggregate.Event):
        TOPIC = "kaoping/SubjectFile.AdjustmentProposed.v1"
        adjustment: str
        delta: Decimal
        component: str | None
        reason: str
        basis: str
        evidence: str
        actor: str

    class AdjustmentApproved(Aggregate.Event):
        TOPIC = "kaoping/SubjectFile.AdjustmentApproved.v1"
        adjustment: str
        actor: str

    class CommitteeDecided(Aggregate.Event):
        TOPIC = "kaoping/SubjectFile.CommitteeDecided.v1"
        grade: str
        reason: str
        minutes_ref: str
        actor: str

    class ReviewRequested(Aggregate.Event):
        TOPIC = "kaoping/SubjectFile.ReviewRequested.v1"
        # v2 adds decide_by: the date by which the request must be decided (the scheme's
        # review_decision_days or appeal_decision_days from filing). Stored v1 events had
        # no deadline recorded and read as None.
        class_version = 2
        kind: str  # "review" (复核) or "appeal" (申诉)
        filed_on: str
        reason: str
        actor: str
        decide_by: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["decide_by"] = None

    class ReviewExtended(Aggregate.Event):
        """申诉 decisions may be extended once, before their deadline (公务员法: ≤ 30 days)."""

        TOPIC = "kaoping/SubjectFile.ReviewExtended.v1"
        kind: str
        decide_by: str
        reason: str
        actor: str

    class ReviewDecided(Aggregate.Event):
        TOPIC = "kaoping/SubjectFile.ReviewDecided.v1"
        # v2 adds decided_on (local date), authority, and late_reason: why a decision came
        # after its deadline (None when on time). Stored v1 events read with decided_on and
        # authority empty and no late reason.
        class_version = 2
        kind: str
        outcome: str  # "upheld" or "changed"
        grade: str | None
        reason: str
        actor: str
        decided_on: str
        authority: str
        late_reason: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.update(decided_on="", authority="", late_reason=None)

    class ObjectionLodged(Aggregate.Event):
        """公示异议: an objection to the grade the notice (公示) lists, lodged in its window;
        its content, channel and (optional) reporter are in the case it opened."""

        TOPIC = "kaoping/SubjectFile.ObjectionLodged.v1"
        case: str
        lodged_on: str  # local date
        actor: str

    class ObjectionDecided(Aggregate.Event):
        """The committee's decision on an objection: dismissed, or upheld — with the grade
        it sets (a committee decision, published as a correction) or None (upheld without a
        change of grade, e.g. a finding passed to the case)."""

        TOPIC = "kaoping/SubjectFile.ObjectionDecided.v1"
        case: str
        outcome: str  # "dismissed" | "upheld"
        grade: str | None
        reason: str
        minutes_ref: str
        decided_on: str
        authority: str
        actor: str

    @staticmethod
    def id_for(year: int, subject: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"kaoping:file:{year}:{subject}")

    @classmethod
    def create_id(cls, year: int, subject: str, **_: object) -> UUID:
        return cls.id_for(year, subject)

    @event(Opened)
    def __init__(self, year: int, subject: str, code: str, kind: str, group: str,
                 actor: str) -> None:
        self.year, self.subject, self.code, self.group = year, subject, code, group
        self.kind = SubjectKind(kind)
        self.targets: dict[str, bool | None] = {}
        self.credits: list[Credit] = []
        self.leader_scores: dict[str, Decimal] = {}
        self.leader_posts: dict[str, str | None] = {}
        self.item_satisfaction: dict[str, Decimal] = {}
        self.indicators: dict[str, Decimal | None] = {}
        self.inspection: Decimal | None = None
        self.analysis: dict[str, Decimal] = {}
        self.team: list[str] = []
        self.team_leader: str | None = None
        self.member_scores: dict[tuple[str, str], Decimal] = {}
        self.documents: dict[str, dict[str, Any]] = {}  # kind -> the latest document
        self.document_hashes: dict[str, str] = {}  # sha256 -> its (latest) name
        self.remark: str | None = None
        self.democratic: Decimal | None = None
        self.satisfaction: Decimal | None = None
        self.from_ballots: dict[str, str] = {}  # field -> the ballot session whose close set it
        self.sanctions: set[str] = set()
        self.proposed: dict[str, tuple[Decimal, str | None, str]] = {}
        self.approved: list[Adjustment] = []
        self.approved_ids: list[str] = []
        self.committee: CommitteeDecision | None = None
        self.requests: dict[str, str] = {}  # kind -> filed on
        self.deadlines: dict[str, str | None] = {}  # kind -> decide by
        self.extended: set[str] = set()
        self.decided: dict[str, str] = {}  # kind -> decided on
        self.deciders: dict[str, tuple[str, str]] = {}  # kind -> (actor, authority)
        self.objections: dict[str, str | None] = {}  # case -> outcome (None: undecided)

    # --- inputs (phase checks are the cycle's, in the service) -------------------------

    @event(TargetsPublished)
    def publish_targets(self, targets: list[str], actor: str) -> None:
        self.targets = dict.fromkeys(targets)

    def assess_target(self, target: str, achieved: bool, evidence: str, actor: str) -> None:
        if target not in self.targets:
            msg = f"{target!r} is not one of the published targets"
            raise InvalidInput(msg, rule="commitment.target-published", field="target")
        self._target_assessed(target=target, achieved=achieved, evidence=evidence, actor=actor)

    @event(TargetAssessed)
    def _target_assessed(self, target: str, achieved: bool, evidence: str, actor: str) -> None:
        self.targets[target] = achieved

    @event(CommitmentsCredited)
    def credit_commitments(self, credited: list[Credit], actor: str) -> None:
        self.credits = list(credited)

    def _commitments(self, scheme: Scheme) -> Decimal | None:
        if scheme.commitments.derivation == "attributed-completion":
            return commitment_score(self.credits)
        achieved = [v for v in self.targets.values() if v is not None]
        return (Decimal(sum(achieved)) * 100 / len(self.targets)
                if self.targets and len(achieved) == len(self.targets) else None)

    @event(LeaderScored)
    def score_by_leader(self, rater: str, score: Decimal, comment: str, actor: str,
                        post: str | None = None) -> None:
        self.leader_scores[rater] = score
        self.leader_posts[rater] = post

    def rate_item(self, session: str, item: str, satisfaction: Decimal, actor: str) -> None:
        if item not in self.targets:
            msg = f"{item!r} is not one of the published targets or 办实事 items"
            raise InvalidInput(msg, rule="satisfaction.item-published", field="item")
        self._item_rated(session=session, item=item, satisfaction=satisfaction, actor=actor)

    @event(ItemSatisfactionRecorded)
    def _item_rated(self, session: str, item: str, satisfaction: Decimal, actor: str) -> None:
        self.item_satisfaction[item] = satisfaction

    @event(IndicatorScored)
    def score_indicator(self, indicator: str, department: str, value: str,
                        score: Decimal | None, evidence: str, actor: str) -> None:
        self.indicators[indicator] = score

    @event(InspectionScored)
    def score_inspection(self, score: Decimal, actor: str) -> None:
        self.inspection = score

    def note_inspection(self, activity: str, notes: str, actor: str) -> None:
        if activity not in INSPECTION_ACTIVITIES:
            msg = f"activity must be one of {', '.join(INSPECTION_ACTIVITIES)}"
            raise InvalidInput(msg, rule="inspection.activity", field="activity")
        self._noted(activity=activity, notes=notes, actor=actor)

    @event(InspectionNoted)
    def _noted(self, activity: str, notes: str, actor: str) -> None:
        pass

    def score_analysis(self, dimension: str, score: Decimal, rationale: str, actor: str) -> None:
        allowed = TEAM_DIMENSIONS if self.kind == SubjectKind.TEAM else CADRE_DIMENSIONS
        if dimension not in allowed:
            msg = f"dimension for a {self.kind.value} must be one of {', '.join(allowed)}"
            raise InvalidInput(msg, rule="analysis.dimension", field="dimension")
        self._analysed(dimension=dimension, score=score, rationale=rationale, actor=actor)

    @event(AnalysisScored)
    def _analysed(self, dimension: str, score: Decimal, rationale: str, actor: str) -> None:
        self.analysis[dimension] = score

    # --- the assessment team: documents, 听谈看议 findings, 集体议绩, 评语 ----------------

    def assign_team(self, members: list[str], leader: str, actor: str) -> None:
        if not members or len(set(members)) != len(members):
            msg = "members must be a non-empty list of distinct team members"
            raise InvalidInput(msg, rule="team.members", field="members")
        if leader not in members:
            msg = "the team's leader (组长) must be one of its members"
            raise InvalidInput(msg, rule="team.leader-member", field="leader")
        self._team_assigned(members=members, leader=leader, actor=actor)

    @event(TeamAssigned)
    def _team_assigned(self, members: list[str], leader: str, actor: str) -> None:
        self.team, self.team_leader = list(members), leader

    def require_member(self, member: str) -> None:
        if member not in self.team:
            msg = f"{member} is not on the assessment team assigned to {self.subject}"
            raise Forbidden(msg, rule="team.assigned-member")

    @event(DocumentSubmitted)
    def submit_document(self, kind: str, sha256: str, size: int, media_type: str, name: str,
                        actor: str) -> None:
        self.documents[kind] = {"kind": kind, "sha256": sha256, "size": size,
                                "media_type": media_type, "name": name}
        self.document_hashes[sha256] = name

    def record_finding(self, activity: str, member: str, summary: str, strengths: list[str],
                       problems: list[str], documents: list[str], actor: str) -> None:
        self.require_member(member)
        if activity not in FINDING_ACTIVITIES:
            msg = f"activity must be one of {', '.join(FINDING_ACTIVITIES)}"
            raise InvalidInput(msg, rule="finding.activity", field="activity")
        unknown = [d for d in documents if d not in self.document_hashes]
        if unknown:
            msg = f"{unknown[0]} is not a document of {self.subject}"
            raise InvalidInput(msg, rule="finding.document", field="documents")
        self._found(activity=activity, member=member, summary=summary, strengths=strengths,
                    problems=problems, documents=documents, actor=actor)

    @event(FindingRecorded)
    def _found(self, activity: str, member: str, summary: str, strengths: list[str],
               problems: list[str], documents: list[str], actor: str) -> None:
        pass

    def score_dimension(self, scheme: Scheme, member: str, dimension: str, score: Decimal,
                        rationale: str, actor: str) -> None:
        self.require_member(member)
        allowed = [d.code for d in scheme.team_review.dimensions_for(self.kind)]
        if dimension not in allowed:
            msg = f"dimension for a {self.kind.value} must be one of {', '.join(allowed)}"
            raise InvalidInput(msg, rule="analysis.dimension", field="dimension")
        self._member_scored(member=member, dimension=dimension, score=score,
                            rationale=rationale, actor=actor)

    @event(MemberScored)
    def _member_scored(self, member: str, dimension: str, score: Decimal, rationale: str,
                       actor: str) -> None:
        self.member_scores[member, dimension] = score

    def conclude(self, remark: str, member: str, actor: str) -> None:
        self.require_member(member)
        if member != self.team_leader:
            msg = "the 评语 is recorded by the team's leader (组长)"
            raise Forbidden(msg, rule="team.leader-remarks")
        if not remark.strip():
            msg = "the 评语 is not empty"
            raise InvalidInput(msg, rule="team.remark", field="remark")
        self._remarked(remark=remark, member=member, actor=actor)

    @event(Remarked)
    def _remarked(self, remark: str, member: str, actor: str) -> None:
        self.remark = remark

    def team_analysis(self, scheme: Scheme) -> TeamAnalysis | None:
        """集体议绩 when a team is assigned; None for a file whose analysis was entered
        directly (cycles before team assignment)."""
        if not self.team:
            return None
        return team_analysis(scheme.team_review, self.kind, self.team, self.member_scores,
                             scheme.composite_places)

    @event(EvaluationRecorded)
    def record_evaluation(self, session: str, democratic: Decimal | None,
                          satisfaction: Decimal | None, actor: str,
                          closed_version: int | None = None) -> None:
        if democratic is not None:
            self.democratic = democratic
        if satisfaction is not None:
            self.satisfaction = satisfaction
        if closed_version is not None and democratic is not None:
            self.from_ballots["democratic"] = session
        if closed_version is not None and satisfaction is not None:
            self.from_ballots["satisfaction"] = session

    @event(EvaluationWithheld)
    def withhold_evaluation(self, session: str, source_version: int, reason: str,
                            actor: str) -> None:
        for field in [f for f, source in self.from_ballots.items() if source == session]:
            setattr(self, field, None)  # a voided session's score no longer counts
            del self.from_ballots[field]

    @event(SanctionRecorded)
    def record_sanction(self, code: str, decided_on: str, source: str, actor: str) -> None:
        self.sanctions.add(code)

    def lift_sanction(self, code: str, reason: str, actor: str) -> None:
        if code not in self.sanctions:
            msg = f"no sanction {code!r} is in force for {self.subject}"
            raise InvalidInput(msg, rule="sanction.in-force", field="code")
        self._lifted(code=code, reason=reason, actor=actor)

    @event(SanctionLifted)
    def _lifted(self, code: str, reason: str, actor: str) -> None:
        self.sanctions.discard(code)

    # --- adjustments: four eyes -----------------------------------------------------------

    def propose_adjustment(self, adjustment: str, delta: Decimal, component: Component | None,
                           reason: str, basis: str, evidence: str, actor: str) -> None:
        if adjustment in self.proposed:
            msg = f"adjustment {adjustment!r} was already proposed"
            raise Conflict(msg, rule="adjustment.unique", field="adjustment")
        self._proposed(adjustment=adjustment, delta=delta,
                       component=component.value if component else None, reason=reason,
                       basis=basis, evidence=evidence, actor=actor)

    @event(AdjustmentProposed)
    def _proposed(self, adjustment: str, delta: Decimal, component: str | None, reason: str,
                  basis: str, evidence: str, actor: str) -> None:
        self.proposed[adjustment] = (delta, component, actor)

    def approve_adjustment(self, adjustment: str, actor: str) -> None:
        if adjustment not in self.proposed:
            msg = f"no adjustment {adjustment!r} was proposed"
            raise InvalidInput(msg, rule="adjustment.proposed", field="adjustment")
        if self.proposed[adjustment][2] == actor:
            msg = "an adjustment must be approved by someone other than its proposer"
            raise Forbidden(msg, rule="adjustment.four-eyes")
        if adjustment in self.approved_ids:
            msg = f"adjustment {adjustment!r} is already approved"
            raise Conflict(msg, rule="adjustment.approved-once", field="adjustment")
        self._approved(adjustment=adjustment, actor=actor)

    @event(AdjustmentApproved)
    def _approved(self, adjustment: str, actor: str) -> None:
        delta, component, _ = self.proposed[adjustment]
        self.approved.append(Adjustment(delta=delta,
                                        component=Component(component) if component else None))
        self.approved_ids.append(adjustment)

    # --- grading and after ----------------------------------------------------------------

    @event(CommitteeDecided)
    def decide(self, grade: str, reason: str, minutes_ref: str, actor: str) -> None:
        self.committee = CommitteeDecision(grade=grade)

    @event(ReviewRequested)
    def request_review(self, kind: str, filed_on: str, reason: str, actor: str,
                       decide_by: str | None) -> None:
        self.requests[kind] = filed_on
        self.deadlines[kind] = decide_by

    def extend_review(self, kind: str, decide_by: str, reason: str, actor: str) -> None:
        if kind in self.decided or kind not in self.requests:
            msg = f"there is no undecided {kind} to extend"
            raise Conflict(msg, rule="review.extend-undecided", field="kind")
        if kind in self.extended:
            msg = f"the {kind}'s decision deadline was already extended once"
            raise Conflict(msg, rule="review.extend-once", field="kind")
        self._extended(kind=kind, decide_by=decide_by, reason=reason, actor=actor)

    @event(ReviewExtended)
    def _extended(self, kind: str, decide_by: str, reason: str, actor: str) -> None:
        self.deadlines[kind] = decide_by
        self.extended.add(kind)

    def decide_review(self, kind: str, outcome: str, grade: str | None, reason: str,
                      actor: str, *, decided_on: str, authority: str,
                      late_reason: str | None) -> None:
        if kind not in self.requests:
            msg = f"no {kind} was filed for {self.subject}"
            raise InvalidInput(msg, rule="review.filed", field="kind")
        if kind in self.decided:
            msg = f"the {kind} was already decided on {self.decided[kind]}"
            raise Conflict(msg, rule="review.decided-once", field="kind")
        if kind == "appeal" and "review" in self.deciders and (
                actor == self.deciders["review"][0]
                or authority.strip() == self.deciders["review"][1].strip()):
            msg = (f"the review (复核) was decided by {self.deciders['review'][1]}; an appeal "
                   "(申诉) is decided by a higher body, not the same one")
            raise Forbidden(msg, rule="appeal.higher-body", field="authority")
        self._review_decided(kind=kind, outcome=outcome, grade=grade, reason=reason,
                             actor=actor, decided_on=decided_on, authority=authority,
                             late_reason=late_reason)

    @event(ReviewDecided)
    def _review_decided(self, kind: str, outcome: str, grade: str | None, reason: str,
                        actor: str, decided_on: str, authority: str,
                        late_reason: str | None) -> None:
        if grade is not None:
            self.committee = CommitteeDecision(grade=grade)
        self.decided[kind] = decided_on
        self.deciders[kind] = (actor, authority)

    @event(ObjectionLodged)
    def lodge_objection(self, case: str, lodged_on: str, actor: str) -> None:
        self.objections[case] = None

    def decide_objection(self, case: str, outcome: str, grade: str | None, reason: str,
                         minutes_ref: str, *, decided_on: str, authority: str,
                         actor: str) -> None:
        if case not in self.objections:
            msg = f"{case} is not an objection to {self.subject}'s result"
            raise InvalidInput(msg, rule="objection.exists", field="case")
        if self.objections[case] is not None:
            msg = f"the objection {case} was already decided ({self.objections[case]})"
            raise Conflict(msg, rule="objection.decided-once", field="case")
        if outcome not in {"dismissed", "upheld"} or (outcome == "dismissed" and grade):
            msg = "outcome is dismissed (驳回, no grade) or upheld (成立, with a grade or none)"
            raise InvalidInput(msg, rule="objection.outcome", field="outcome")
        self._objection_decided(case=case, outcome=outcome, grade=grade, reason=reason,
                                minutes_ref=minutes_ref, decided_on=decided_on,
                                authority=authority, actor=actor)

    @event(ObjectionDecided)
    def _objection_decided(self, case: str, outcome: str, grade: str | None, reason: str,
                           minutes_ref: str, decided_on: str, authority: str,
                           actor: str) -> None:
        self.objections[case] = outcome
        if grade is not None:
            self.committee = CommitteeDecision(grade=grade)

    def evidence(self, scheme: Scheme) -> SubjectEvidence:
        commitments = self._commitments(scheme)
        indicators = [
            IndicatorScore(indicator=d.code, weight=d.weight, score=self.indicators[d.code])
            for d in scheme.indicators_for(self.group, self.kind, self.code)
            if d.code in self.indicators
        ]
        rule = scheme.rule_for(self.group, self.kind)
        analysis = [self.analysis[k] for k in sorted(self.analysis)]
        team = self.team_analysis(scheme)
        if team is not None:  # 集体议绩 feeds the component as its one value
            analysis = [] if team.value is None else [team.value]
        not_applicable = [Component.INDICATORS] if (
            Component.INDICATORS in rule.weights
            and not scheme.indicators_for(self.group, self.kind, self.code)) else []
        weights = scheme.leader_post_weights
        targets = [TargetItem(item=t, achieved=None if done is None else Decimal(100 * done),
                              satisfaction=self.item_satisfaction.get(t))
                   for t, done in self.targets.items()]
        return SubjectEvidence(
            subject=self.subject, code=self.code, commitments=commitments,
            leader_scores=[self.leader_scores[k] for k in sorted(self.leader_scores)],
            leader_weights=[weights.get(post, Decimal(1)) if (
                post := self.leader_posts.get(k)) else Decimal(1)
                for k in sorted(self.leader_scores)],
            targets=targets,
            democratic=self.democratic, survey_satisfaction=self.satisfaction,
            indicators=indicators, inspection=self.inspection,
            analysis=analysis,
            vetoes=sorted(self.sanctions), adjustments=list(self.approved),
            committee=self.committee, not_applicable=not_applicable)


def missing_member_scores(files: Iterable[SubjectFile], scheme: Scheme) -> list[str]:
    """'subject dimension (member)' for each 实绩分析 score an assigned member still owes."""
    out = []
    for file in files:
        team = file.team_analysis(scheme)
        if team is not None:
            out += [f"{file.subject} {d} ({m})" for d, m in team.missing]
    return out


def pool_result(scheme: Scheme, group: str, kind: SubjectKind, files: Iterable[SubjectFile],
                previous: dict[str, int], version: str = SCORE_FUNCTION_VERSION) -> PoolResult:
    """A pool's results from its subjects' files: the one way every caller (use cases, the
    read model, as-of replays, the published record, the verifier) feeds the score function.
    ``previous``: last cycle's published ranks (位次进退), for whichever subjects have one."""
    subjects = [f.evidence(scheme) for f in files]
    return score_pool(scheme, PoolEvidence(
        group=group, kind=kind, subjects=subjects,
        previous_ranks={e.subject: previous[e.subject] for e in subjects
                        if e.subject in previous}), version=version)
