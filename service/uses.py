"""Use cases for the use of results (考核结果运用): record a use on a published grade, list a
subject's uses, and list the uses multi-year rules make due (domain/uses.py has the rules)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from eventsourcing.application import AggregateNotFoundError

from domain.cycle import Phase
from domain.errors import Conflict, InvalidInput, NotFound
from domain.scheme import SubjectKind, grades_of
from domain.uses import RULES, ResultUses, Use, UseKind
from service.guards import guarded, results_unchanged
from service.policy import require_role
from service.principals import Principal, Role
from service.writes import Written, save

if TYPE_CHECKING:
    from service.evaluation import Evaluation
    from service.published import PublishedResults
    from service.store import AfterAppend, EventStore

READERS = (Role.ORGANIZER, Role.COMMITTEE, Role.SUPERVISOR)  # personnel actions: not public


class Due(msgspec.Struct, kw_only=True):
    subject: str
    rule: str
    title: str
    years: list[int]
    grades: list[str]
    answers: list[str]
    answered: bool  # a use of one of ``answers`` is recorded for the subject this year
    source: str


class Uses:
    def __init__(self, store: EventStore, evaluation: Evaluation) -> None:
        self.store = store
        self.evaluation = evaluation

    def _stream(self, year: int, subject: str) -> ResultUses | None:
        try:
            uses: ResultUses = self.store.repository.get(ResultUses.id_for(year, subject))
        except AggregateNotFoundError:
            return None
        return uses

    def _published(self, year: int) -> PublishedResults:
        cycle = self.evaluation.cycle(year)
        cycle.require_phase(Phase.PUBLISHED)
        published = self.evaluation.published(year)
        if published is None:  # pragma: no cover -- a published cycle has its results
            msg = f"cycle {year} has no published results"
            raise Conflict(msg, rule="results.published")
        return published

    def record(self, principal: Principal, year: int, subject: str, *, kind: str,
               decided_on: str, authority: str, document: str, reason: str,
               after_append: AfterAppend | None = None) -> Written:
        """A use of the subject's published result, resting on the version in force (a
        correction published meanwhile refuses the write: the grade it cited moved)."""
        require_role(principal, Role.ORGANIZER)
        try:
            use_kind = UseKind(kind)
        except ValueError:
            allowed = ", ".join(k.value for k in UseKind)
            msg = f"kind must be one of: {allowed}"
            raise InvalidInput(msg, rule="use.kind", field="kind") from None
        cycle = self.evaluation.cycle(year)
        entry = cycle.entry(subject)
        published = self._published(year)
        result = published.result_of(subject)
        assert cycle.scheme is not None  # noqa: S101 -- a published cycle has its scheme
        grades = grades_of(cycle.scheme.rule_for(entry.group, entry.kind))
        uses = self._stream(year, subject) or ResultUses(year=year, subject=subject)
        uses.record(kind=use_kind, grade=None if result is None else result.final_grade,
                    grades=grades, cadre=entry.kind is not SubjectKind.TEAM,
                    results_version=published.version,
                    results_fingerprint=published.fingerprint, decided_on=decided_on,
                    authority=authority, document=document, reason=reason, actor=principal.id)
        return save(self.store, uses, stream_id=uses.id,
                    after_append=guarded(after_append,
                                         results_unchanged(year, published.version)))

    def of(self, principal: Principal, year: int, subject: str) -> list[Use]:
        require_role(principal, *READERS)
        self.evaluation.cycle(year).entry(subject)
        uses = self._stream(year, subject)
        return [] if uses is None else list(uses.uses)

    def due(self, principal: Principal, year: int) -> list[Due]:
        """Every multi-year rule met by a subject's published grades up to ``year``."""
        require_role(principal, *READERS)
        grades_by_year: dict[int, dict[str, tuple[str, list[str]]]] = {}
        span = max(rule.years for rule in RULES)
        for y in range(year - span + 1, year + 1):
            grades_by_year[y] = self._grades(y) if y == year or self._is_published(y) else {}
        out: list[Due] = []
        for subject in sorted(grades_by_year[year]):
            recorded = None  # read once per subject, only when a rule is met
            for rule in RULES:
                years = list(range(year - rule.years + 1, year + 1))
                marks = [grades_by_year[y].get(subject) for y in years]
                if not all(m is not None and m[0] == (m[1][-1] if rule.worst else m[1][0])
                           for m in marks):
                    continue
                recorded = recorded or self._stream(year, subject)
                answered = recorded is not None and any(
                    u.kind in {a.value for a in rule.answers} for u in recorded.uses)
                out.append(Due(subject=subject, rule=rule.code, title=rule.title, years=years,
                               grades=[m[0] for m in marks if m is not None],
                               answers=[a.value for a in rule.answers], answered=answered,
                               source=rule.source))
        return out

    def _is_published(self, year: int) -> bool:
        try:
            return self.evaluation.cycle(year).phase is Phase.PUBLISHED
        except NotFound:  # no such cycle: nothing published that year
            return False

    def _grades(self, year: int) -> dict[str, tuple[str, list[str]]]:
        """Cadre subject → (published final grade, its pool's grades, best first)."""
        published = self._published(year)
        cycle = self.evaluation.cycle(year)
        assert cycle.scheme is not None  # noqa: S101 -- a published cycle has its scheme
        out: dict[str, tuple[str, list[str]]] = {}
        for pool in published.results():
            if pool.kind is SubjectKind.TEAM:  # personnel rules: cadres only
                continue
            grades = grades_of(cycle.scheme.rule_for(pool.group, pool.kind))
            for r in pool.results:
                if r.final_grade is not None:
                    out[r.subject] = (r.final_grade, grades)
        return out
