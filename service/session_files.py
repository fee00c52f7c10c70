"""What closing or voiding a ballot session writes in its subjects' files.

Where the session's year has a cycle in scoring, closing records in each subject's file either
its score (``EvaluationRecorded`` naming the close) or, when the session gives that subject no
result (a class below quorum, fewer than k valid ballots), ``EvaluationWithheld`` with the
reason: the file then says why its 民主测评 / 民意调查 component is missing, and sealing reports
it until the organizer acts (a new session, or a count held elsewhere entered by hand).

A score that came from one session's close is never replaced by another's: the later close is
refused (``session.earlier-ballot-score``) until the earlier session is voided, with its reason
and authority — which withdraws its scores from the files (``EvaluationWithheld``,
"session-voided") in the same transaction. A replacement is then a recorded decision the
offline verifier can check, never a silent overwrite.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from domain.ballots import SessionKind, require_in_roster
from domain.cycle import Cycle, Phase
from domain.errors import Conflict, NotFound
from domain.scheme import SubjectKind

if TYPE_CHECKING:
    from domain.ballots import EvaluationSession, SessionDefinition
    from domain.subject_file import SubjectFile
    from service.evaluation import Evaluation

FIELD_OF = {SessionKind.DEMOCRATIC: "democratic", SessionKind.SURVEY: "satisfaction"}
NO_COUNTED_VOTES = "no-counted-votes"  # every answer for the subject was 不了解 / 弃权
VOIDED = "session-voided"


def _cycle(evaluation: Evaluation, year: int) -> Cycle | None:
    try:
        return evaluation.current(year)  # read only
    except NotFound:
        return None  # a session of a year without a cycle (a rehearsal): its results go nowhere


def check_roster(evaluation: Evaluation, definition: SessionDefinition) -> None:
    cycle = _cycle(evaluation, definition.year)
    if cycle is not None:
        require_in_roster(definition, {e.subject for e in cycle.roster})


def scoring_cycle(evaluation: Evaluation, year: int) -> Cycle | None:
    """The year's cycle if it is open for scoring (the only phase files take these events in);
    the caller saves with ``cycle_unchanged`` on it, so a seal that commits in between refuses
    the write instead of letting an input land after the seal."""
    cycle = _cycle(evaluation, year)
    return cycle if cycle is not None and cycle.phase == Phase.SCORING else None


def closed_in_files(evaluation: Evaluation, session: EvaluationSession, actor: str,
                    cycle: Cycle | None) -> list[SubjectFile]:
    """The files' events for a session just closed (its Closed event is pending)."""
    d, result = session.definition, session.result
    if result is None or cycle is None:
        return []
    field, closed, files = FIELD_OF[d.kind], session.version, []
    for tally in result.subjects:
        file = evaluation.file(d.year, tally.subject)
        if tally.score is None:
            reason = tally.withheld_reason or NO_COUNTED_VOTES
            file.withhold_evaluation(d.code, closed, str(reason), actor)
        else:
            earlier = file.from_ballots.get(field)
            if earlier is not None:
                msg = (f"{tally.subject}'s {field} score came from ballot session {earlier}; "
                       f"void that session (with its reason and authority) before this one "
                       "replaces it")
                raise Conflict(msg, rule="session.earlier-ballot-score", field="subjects")
            score = tally.score
            if d.kind == SessionKind.DEMOCRATIC:
                file.record_evaluation(d.code, score, None, actor, closed)
            else:
                file.record_evaluation(d.code, None, score / 100, actor, closed)
        files.append(file)
    return files


def voided_in_files(evaluation: Evaluation, session: EvaluationSession, actor: str,
                    cycle: Cycle | None) -> list[SubjectFile]:
    """Withdraw a voided session's scores from the files that still hold them."""
    d = session.definition
    if session.result is None or cycle is None:
        return []
    field, files = FIELD_OF[d.kind], []
    for subject in d.subjects:
        file = evaluation.file(d.year, subject)
        if file.from_ballots.get(field) == d.code:
            file.withhold_evaluation(d.code, session.version, VOIDED, actor)
            files.append(file)
    return files



# --- what voters and sheets call the subjects -----------------------------------------------

class SubjectName(msgspec.Struct, frozen=True, kw_only=True):
    """A subject as the roster names it: 东风镇 · 领导班子, or 张三 · 东风镇 · 党政正职."""

    subject: str
    name: str
    unit: str | None  # the unit's name (a team's own name; a cadre's unit)
    kind: SubjectKind | None


class SubjectNames(msgspec.Struct, frozen=True, kw_only=True):
    year: int
    names: dict[str, SubjectName]  # subject -> name; subjects outside the roster are absent
    digest: str  # changes whenever any name does (a cache key for pages built with them)

    def of(self, subject: str) -> SubjectName:
        return self.names.get(subject) or SubjectName(subject=subject, name=subject, unit=None,
                                                      kind=None)

    def units(self, subjects: list[str]) -> list[str]:
        """The units these subjects belong to, in their order, each once."""
        return list(dict.fromkeys(n.unit for n in map(self.of, subjects) if n.unit))


def names_from(year: int, cycle: Cycle | None) -> SubjectNames:
    roster = [] if cycle is None else cycle.roster
    units = {e.unit_code: e.name for e in roster if e.kind == SubjectKind.TEAM}
    names = {e.subject: SubjectName(subject=e.subject, name=e.name, kind=e.kind,
                                    unit=units.get(e.unit_code, e.unit_code)) for e in roster}
    digest = hashlib.sha256(msgspec.json.encode(names, order="sorted")).hexdigest()[:16]
    return SubjectNames(year=year, names=names, digest=digest)


class RosterNames:
    """Subject names for the ballot page and the credential sheets, from the year's roster.

    The roster is fixed when its cycle is frozen, so from then on it is read once; before
    (set-up, or a rehearsal year without a cycle) it is read again at most every ``refresh``
    seconds. ``cached`` never does I/O (the page calls it on the event loop)."""

    def __init__(self, evaluation: Evaluation, refresh: float = 30.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.evaluation, self.refresh, self.monotonic = evaluation, refresh, monotonic
        self._names: dict[int, tuple[float | None, SubjectNames]] = {}  # None: fixed

    def cached(self, year: int) -> SubjectNames | None:
        hit = self._names.get(year)
        if hit is None or (hit[0] is not None and self.monotonic() - hit[0] >= self.refresh):
            return None
        return hit[1]

    def load(self, year: int) -> SubjectNames:
        cycle = _cycle(self.evaluation, year)
        names = names_from(year, cycle)
        fixed = cycle is not None and cycle.phase != Phase.SETUP
        self._names[year] = (None if fixed else self.monotonic(), names)
        return names
