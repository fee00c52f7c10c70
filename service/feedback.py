"""Use cases of notification and feedback (通报反馈, domain/feedback.py): the organizer records
集中点评 and, per subject, the written notification and 个别反馈; the subject reads its own,
evaluators read all, and the due list names the subjects not yet notified."""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

import msgspec
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain.cycle import Cycle, Phase
from domain.errors import Conflict, InvalidInput
from domain.feedback import CentralReview, Feedback, SubjectFeedback
from service.policy import require_role
from service.principals import Principal, Role
from service.store import ProjectingRepository
from service.writes import Written, is_version_conflict, save

if TYPE_CHECKING:
    from collections.abc import Callable

    from service.evaluation import Evaluation
    from service.store import AfterAppend, EventStore


class FeedbackDue(msgspec.Struct, kw_only=True):
    subject: str
    name: str
    notified: bool  # 书面通知 recorded
    fed_back: bool  # 个别反馈 recorded


class Notifications:
    def __init__(self, store: EventStore, evaluation: Evaluation) -> None:
        self.store, self.evaluation = store, evaluation
        # A cycle's record is one stream that grows by two events per subject: loading it
        # whole for each write made recording feedback quadratic. This process keeps each
        # year's aggregate and fast-forwards it from the store (another process's writes
        # included) before each use; writes take the lock, and a write that fails drops the
        # copy (it may hold an event that was not stored).
        self._cached = ProjectingRepository(event_store=store.repository.event_store,
                                            cache_maxsize=8, fastforward=True,
                                            deepcopy_from_cache=False)
        self._write = threading.RLock()  # readers too: never a half-made write

    def _stream(self, year: int) -> Feedback | None:
        with self._write:
            try:
                found: Feedback = self._cached.get(Feedback.id_for(year))
            except AggregateNotFoundError:
                return None
            return found

    def _record(self, year: int, act: Callable[[Feedback], None],
                after_append: AfterAppend | None) -> Written:
        with self._write:
            feedback = self._stream(year) or Feedback(year=year)
            try:
                act(feedback)
                return self._save(feedback, after_append)
            except BaseException:
                with contextlib.suppress(KeyError):
                    assert self._cached.cache is not None  # noqa: S101 -- made with a size
                    self._cached.cache.get(Feedback.id_for(year), evict=True)
                raise

    def _published(self, year: int, on: str | None = None) -> Cycle:
        cycle = self.evaluation.current(year)
        cycle.require_phase(Phase.PUBLISHED)
        today = self.evaluation.today()
        if on is not None and not (cycle.published_on or "") <= on <= today.isoformat():
            msg = f"the date must be from the notification ({cycle.published_on}) to today"
            raise InvalidInput(msg, rule="feedback.date", field="on")
        return cycle

    def _save(self, feedback: Feedback, after_append: AfterAppend | None) -> Written:
        try:
            return save(self.store, feedback, after_append=after_append,
                        stream_id=feedback.id)
        except IntegrityError as exc:
            if is_version_conflict(exc):
                msg = "the record changed concurrently; read it again and retry"
                raise Conflict(msg, rule="concurrent-change") from None
            raise

    def hold_review(self, principal: Principal, year: int, *, group: str | None, on: str,
                    by: str, summary: str, after_append: AfterAppend | None = None) -> Written:
        """集中点评 of the common problems: once per cycle (group None) and once per group."""
        require_role(principal, Role.ORGANIZER)
        cycle = self._published(year, on)
        if group is not None and group not in {e.group for e in cycle.roster}:
            msg = f"{group!r} is not a comparison group of cycle {year}"
            raise InvalidInput(msg, rule="feedback.group", field="group")
        return self._record(year, lambda f: f.hold_review(group, on, by, summary, principal.id),
                            after_append)

    def feed_back(self, principal: Principal, year: int, subject: str, *, kind: str, on: str,
                  by: str, summary: str, after_append: AfterAppend | None = None) -> Written:
        """书面通知 (once) or 个别反馈 (as often as it happens) to one subject."""
        require_role(principal, Role.ORGANIZER)
        if kind not in {"notification", "feedback"}:
            msg = "kind is notification (书面通知) or feedback (个别反馈)"
            raise InvalidInput(msg, rule="feedback.kind", field="kind")
        self._published(year, on).entry(subject)
        return self._record(
            year, lambda f: f.feed_back(subject, kind, on, by, summary, principal.id),
            after_append)

    def of(self, year: int, subject: str) -> tuple[list[CentralReview], list[SubjectFeedback]]:
        """The 集中点评 that cover the subject's group, and its own notification and
        feedback (the caller has passed the card gate)."""
        entry = self.evaluation.cycle(year).entry(subject)
        feedback = self._stream(year)
        if feedback is None:
            return [], []
        reviews = [r for r in feedback.reviews if r.group in {None, entry.group}]
        return reviews, feedback.of(subject)

    def due(self, principal: Principal, year: int) -> list[FeedbackDue]:
        """Every subject not yet notified in writing or not yet fed back, roster order."""
        require_role(principal, Role.ORGANIZER, Role.COMMITTEE, Role.SUPERVISOR)
        cycle = self._published(year)
        feedback = self._stream(year)
        out = []
        for entry in cycle.roster:
            mine = [] if feedback is None else feedback.of(entry.subject)
            notified = any(g.kind == "notification" for g in mine)
            fed_back = any(g.kind == "feedback" for g in mine)
            if not (notified and fed_back):
                out.append(FeedbackDue(subject=entry.subject, name=entry.name,
                                       notified=notified, fed_back=fed_back))
        return out
