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

from typing import TYPE_CHECKING

from domain.ballots import SessionKind, require_in_roster
from domain.cycle import Cycle, Phase
from domain.errors import Conflict, NotFound

if TYPE_CHECKING:
    from domain.ballots import EvaluationSession, SessionDefinition
    from domain.subject_file import SubjectFile
    from service.evaluation import Evaluation

FIELD_OF = {SessionKind.DEMOCRATIC: "democratic", SessionKind.SURVEY: "satisfaction"}
NO_COUNTED_VOTES = "no-counted-votes"  # every answer for the subject was 不了解 / 弃权
VOIDED = "session-voided"


def _cycle(evaluation: Evaluation, year: int) -> Cycle | None:
    try:
        return evaluation.cycle(year)
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

