"""Notification and feedback (通报反馈) of one cycle's results, after publication.

The seed method (成效 四): "对领导班子和领导干部存在的共性问题，召开领导干部大会进行集中点评，
对个性问题进行个别反馈" — common problems are reviewed at a meeting (集中点评: one recorded act
per cycle, or per comparison group), individual ones fed back to each subject (个别反馈: who fed
back, when, and a summary). Each subject is also told its result in writing (书面通知, 公务员法
Art. 38): a subject not yet notified is due. One stream per cycle; nothing here moves a result.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec
from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict


class CentralReview(msgspec.Struct, frozen=True, kw_only=True):
    """集中点评: a meeting on the common problems of a group (None: every group)."""

    group: str | None
    held_on: str
    by: str
    summary: str


class SubjectFeedback(msgspec.Struct, frozen=True, kw_only=True):
    """书面通知 (kind ``notification``) or 个别反馈 (kind ``feedback``) to one subject."""

    subject: str
    kind: str
    on: str
    by: str  # who fed back, as recorded (e.g. 市委组织部副部长 王某)
    summary: str


class Feedback(Aggregate):
    """考核反馈: one cycle's 集中点评, written notifications and 个别反馈."""

    TOPIC = "kaoping/Feedback"

    class Created(Aggregate.Created):
        TOPIC = "kaoping/Feedback.Created"  # base only; never stored

    class Opened(Created):
        TOPIC = "kaoping/Feedback.Opened.v1"
        year: int

    class CentralReviewHeld(Aggregate.Event):
        TOPIC = "kaoping/Feedback.CentralReviewHeld.v1"
        group: str | None
        held_on: str
        by: str
        summary: str
        actor: str

    class SubjectFedBack(Aggregate.Event):
        TOPIC = "kaoping/Feedback.SubjectFedBack.v1"
        subject: str
        kind: str  # notification (书面通知) | feedback (个别反馈)
        on: str
        by: str
        summary: str
        actor: str

    @staticmethod
    def id_for(year: int) -> UUID:
        return uuid5(NAMESPACE_URL, f"kaoping:feedback:{year}")

    @classmethod
    def create_id(cls, year: int, **_: object) -> UUID:
        return cls.id_for(year)

    @event(Opened)
    def __init__(self, year: int) -> None:
        self.year = year
        self.reviews: list[CentralReview] = []
        self.given: list[SubjectFeedback] = []

    def hold_review(self, group: str | None, held_on: str, by: str, summary: str,
                    actor: str) -> None:
        if any(r.group == group for r in self.reviews):
            where = f"group {group}" if group else "the whole cycle"
            msg = f"the 集中点评 of {where} was already recorded"
            raise Conflict(msg, rule="feedback.review-once", field="group")
        self._held(group=group, held_on=held_on, by=by, summary=summary, actor=actor)

    @event(CentralReviewHeld)
    def _held(self, group: str | None, held_on: str, by: str, summary: str,
              actor: str) -> None:
        self.reviews.append(CentralReview(group=group, held_on=held_on, by=by,
                                          summary=summary))

    def feed_back(self, subject: str, kind: str, on: str, by: str, summary: str,
                  actor: str) -> None:
        if kind == "notification" and self.notified(subject):
            msg = f"{subject} was already notified in writing"
            raise Conflict(msg, rule="feedback.notified-once", field="kind")
        self._fed_back(subject=subject, kind=kind, on=on, by=by, summary=summary, actor=actor)

    @event(SubjectFedBack)
    def _fed_back(self, subject: str, kind: str, on: str, by: str, summary: str,
                  actor: str) -> None:
        self.given.append(SubjectFeedback(subject=subject, kind=kind, on=on, by=by,
                                          summary=summary))

    def notified(self, subject: str) -> bool:
        return any(g.subject == subject and g.kind == "notification" for g in self.given)

    def of(self, subject: str) -> list[SubjectFeedback]:
        return [g for g in self.given if g.subject == subject]
