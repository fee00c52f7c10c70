"""Anonymous ballots (民主测评, 民意调查): sessions, one-time credentials, ballots, the tally.

A session is defined, then frozen (its fingerprint published). Credentials are issued as codes
shown once; only their hashes are stored, never who got which. Each ballot is its own stream,
keyed by (session, credential hash): a second use of a credential collides on the stream's
first version, so one ballot per credential holds under any concurrency. Closing cuts at a log
position: later ballots are kept, marked late, and not counted. The tally is a pure function
of the events; results for fewer than ``min_valid`` valid ballots are withheld.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum
from typing import Annotated, Any
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec
from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, InvalidInput
from domain.scheme import check_score, check_share
from domain.text import Text, name_text, text

# v2: a class below quorum fails the whole session (v1 dropped the class and re-weighted the
# others); quorum may be strict (more than the share); per-ballot limits scale with the session.
TALLY_VERSION = "kaoping-tally/2"
# The default quorum and where it comes from; a session may state another rule and its source.
SEED_QUORUM_SOURCE = ("民主测评办法（县政协）: 实到人数超过应到人数的半数, 测评方有效 — "
                      "reference/domain-notes.md §1.6 (wm114.cn/wen/166/331845.html)")
Code = Annotated[str, text(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]


class SessionKind(StrEnum):
    DEMOCRATIC = "democratic"  # 民主测评: a 0–100 component score
    SURVEY = "survey"  # 民意调查: a satisfaction rate (score / 100)


class SessionState(StrEnum):
    DEFINED = "defined"
    FROZEN = "frozen"
    OPEN = "open"
    CLOSED = "closed"
    VOIDED = "voided"


class Option(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: Code
    label: Text
    value: Decimal  # 0–100
    counted: bool = True  # 不了解 / 弃权 are usually not counted


class Item(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: Code
    label: Text


class RaterClass(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: Code
    label: Text
    weight: Decimal
    eligible: Annotated[int, msgspec.Meta(ge=1)]


class QuorumRule(StrEnum):
    """How 实到 (ballots cast in time) compares with 应到 (eligible) × the quorum share."""

    MORE_THAN = "more-than"  # 实到 > 应到 × share: "超过半数" with share 0.5 (the default)
    AT_LEAST = "at-least"  # 实到 ≥ 应到 × share


class Rules(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    quorum: Decimal = Decimal("0.5")  # share of a class's eligible raters who must take part
    quorum_rule: QuorumRule = QuorumRule.MORE_THAN
    quorum_source: Text = SEED_QUORUM_SOURCE  # where the quorum rule comes from
    min_valid: Annotated[int, msgspec.Meta(ge=1)] = 5  # k: fewer valid ballots, no result
    top_option: Text | None = None  # the option the top limits count, e.g. "excellent"
    max_top: Annotated[int, msgspec.Meta(ge=0)] | None = None  # per ballot, across subjects
    # per ballot, at most this share of the subjects (rounded up: one subject may always get
    # the top option, however small the session)
    max_top_share: Decimal | None = None
    identical_invalid: bool = True  # one option for every answer is invalid ...
    identical_min_subjects: Annotated[int, msgspec.Meta(ge=1)] = 3  # ... on this many subjects
    revote: bool = False  # if allowed, a later ballot replaces the earlier; the last counts
    granularity_seconds: Annotated[int, msgspec.Meta(ge=60)] = 3600  # timestamps coarsened


def quorum_required(rules: Rules, eligible: int) -> int:
    """The fewest ballots (实到) that meet quorum for a class of ``eligible`` (应到)."""
    floor = int((rules.quorum * eligible).to_integral_value(rounding=ROUND_FLOOR))
    if rules.quorum_rule == QuorumRule.MORE_THAN:
        return floor + 1
    return int((rules.quorum * eligible).to_integral_value(rounding=ROUND_CEILING))


def top_limit(rules: Rules, subjects: int) -> int | None:
    """How many subjects one ballot may give the top option: ``max_top``, and the share cap
    rounded up (so a sincere 优秀 for the only subject of a session is never over it)."""
    limits = [] if rules.max_top is None else [rules.max_top]
    if rules.max_top_share is not None:
        limits.append(int((rules.max_top_share * subjects).to_integral_value(
            rounding=ROUND_CEILING)))
    return min(limits) if rules.top_option is not None and limits else None


class SessionDefinition(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    code: Code
    year: int
    kind: SessionKind
    title: Annotated[str, name_text(max_length=200)]
    subjects: list[Text]
    items: list[Item]
    options: list[Option]
    classes: list[RaterClass]
    rules: Rules = Rules()


def validate_definition(d: SessionDefinition) -> None:
    def unique(values: list[str], field: str) -> None:
        if not values or len(values) != len(set(values)):
            msg = f"{field} must be a non-empty list without repeats"
            raise InvalidInput(msg, rule="session.unique", field=field)

    unique(d.subjects, "subjects")
    unique([i.code for i in d.items], "items")
    unique([o.code for o in d.options], "options")
    unique([c.code for c in d.classes], "classes")
    for i, option in enumerate(d.options):
        check_score(option.value, f"options[{i}].value")
    total = Decimal(0)
    for i, cls in enumerate(d.classes):
        total += check_share(cls.weight, f"classes[{i}].weight")
    if total != 1:
        msg = f"class weights sum to {total}, not 1"
        raise InvalidInput(msg, rule="session.weights-sum-to-one", field="classes")
    _validate_rules(d)


def _validate_rules(d: SessionDefinition) -> None:
    rules = d.rules
    check_share(rules.quorum, "rules.quorum")
    if not rules.quorum_source.strip():
        msg = "rules.quorum_source must say where the quorum rule comes from"
        raise InvalidInput(msg, rule="session.quorum-source", field="rules.quorum_source")
    if rules.top_option is not None and rules.top_option not in {o.code for o in d.options}:
        msg = "rules.top_option must be one of the options"
        raise InvalidInput(msg, rule="session.top-option", field="rules.top_option")
    if rules.top_option is None and (rules.max_top is not None
                                     or rules.max_top_share is not None):
        msg = "a limit on the top option needs rules.top_option"
        raise InvalidInput(msg, rule="session.top-option", field="rules.top_option")
    if rules.max_top_share is not None and check_share(
            rules.max_top_share, "rules.max_top_share") == 0:
        msg = "rules.max_top_share must be above 0 (max_top 0 forbids the top option)"
        raise InvalidInput(msg, rule="share.range", field="rules.max_top_share")


def require_in_roster(d: SessionDefinition, roster: set[str]) -> None:
    """A session of a cycle's year rates that cycle's subjects only: a result for anyone else
    could never reach a file, and a session that silently drops it misleads its raters."""
    outside = [s for s in d.subjects if s not in roster]
    if outside:
        msg = (f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} not in the roster "
               f"of cycle {d.year}")
        raise InvalidInput(msg, rule="session.subject-in-roster", field="subjects")


def fingerprint(d: SessionDefinition) -> str:
    return hashlib.sha256(msgspec.json.encode(d, order="sorted")).hexdigest()


def credential_hash(session: str, code: str) -> str:
    """SHA-256 over the session and the code: a code is worthless in another session."""
    return hashlib.sha256(f"kaoping-credential:{session}:{code}".encode()).hexdigest()


def ballot_id(session: str, credential_hash: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"kaoping:ballot:{session}:{credential_hash}")


class EvaluationSession(Aggregate):
    """测评会话: one 民主测评 or 民意调查, from definition to close."""

    TOPIC = "kaoping/EvaluationSession"

    class Created(Aggregate.Created):
        TOPIC = "kaoping/EvaluationSession.Created"  # base only; never stored

    class Defined(Created):
        TOPIC = "kaoping/EvaluationSession.Defined.v1"
        # v2: the rules state the quorum rule (and its source) and how many subjects the
        # identical-ballot rule needs. A stored v1 definition keeps the rules it was frozen
        # and published with: at least the share, and identical on any ballot.
        class_version = 2
        definition: SessionDefinition
        actor: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            rules = state["definition"].setdefault("rules", {})
            rules.setdefault("quorum_rule", QuorumRule.AT_LEAST.value)
            rules.setdefault("quorum_source", "as defined before the quorum rule was stated")
            rules.setdefault("identical_min_subjects", 1)

    class Frozen(Aggregate.Event):
        TOPIC = "kaoping/EvaluationSession.Frozen.v1"
        fingerprint: str
        actor: str

    class CredentialsIssued(Aggregate.Event):
        TOPIC = "kaoping/EvaluationSession.CredentialsIssued.v1"
        rater_class: str
        hashes: list[str]
        actor: str

    class CredentialRevoked(Aggregate.Event):
        TOPIC = "kaoping/EvaluationSession.CredentialRevoked.v1"
        credential_hash: str
        reason: str
        actor: str

    class Opened(Aggregate.Event):
        TOPIC = "kaoping/EvaluationSession.Opened.v1"
        actor: str

    class Closed(Aggregate.Event):
        TOPIC = "kaoping/EvaluationSession.Closed.v1"
        cut_position: int
        result: SessionResult
        trackers: list[str]  # the board: hex leaf hashes of the ballots counted, sorted
        actor: str

    class Voided(Aggregate.Event):
        TOPIC = "kaoping/EvaluationSession.Voided.v1"
        reason: str
        authority: str
        actor: str

    @staticmethod
    def id_for(code: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"kaoping:session:{code}")

    @classmethod
    def create_id(cls, definition: SessionDefinition, **_: object) -> UUID:
        return cls.id_for(definition.code)

    @event(Defined)
    def __init__(self, definition: SessionDefinition, actor: str) -> None:
        self.definition = definition
        self.state = SessionState.DEFINED
        self.fingerprint: str | None = None
        self.credentials: dict[str, str] = {}  # hash -> rater class
        self.revoked: set[str] = set()
        self.cut_position: int | None = None
        self.result: SessionResult | None = None
        self.trackers: list[str] = []

    def require(self, *states: SessionState) -> None:
        if self.state not in states:
            allowed = ", ".join(s.value for s in states)
            msg = f"session {self.definition.code} is {self.state.value}; this needs {allowed}"
            raise Conflict(msg, rule="session.state")

    def freeze(self, actor: str) -> None:
        self.require(SessionState.DEFINED)
        self._frozen(fingerprint=fingerprint(self.definition), actor=actor)

    @event(Frozen)
    def _frozen(self, fingerprint: str, actor: str) -> None:
        self.fingerprint, self.state = fingerprint, SessionState.FROZEN

    def issue(self, rater_class: str, hashes: list[str], actor: str) -> None:
        self.require(SessionState.FROZEN, SessionState.OPEN)
        cls = next((c for c in self.definition.classes if c.code == rater_class), None)
        if cls is None:
            msg = f"no rater class {rater_class!r} in this session"
            raise InvalidInput(msg, rule="session.rater-class", field="rater_class")
        already = sum(1 for c in self.credentials.values() if c == rater_class)
        if already + len(hashes) > cls.eligible:
            msg = (f"class {rater_class} has {cls.eligible} eligible raters; {already} "
                   f"credentials were issued already")
            raise InvalidInput(msg, rule="credentials.not-more-than-eligible", field="count")
        self._issued(rater_class=rater_class, hashes=hashes, actor=actor)

    @event(CredentialsIssued)
    def _issued(self, rater_class: str, hashes: list[str], actor: str) -> None:
        self.credentials.update(dict.fromkeys(hashes, rater_class))

    def revoke(self, credential_hash: str, reason: str, actor: str) -> None:
        self.require(SessionState.FROZEN, SessionState.OPEN)
        if credential_hash not in self.credentials:
            msg = "no such credential in this session"
            raise InvalidInput(msg, rule="credential.issued", field="credential_hash")
        self._revoked(credential_hash=credential_hash, reason=reason, actor=actor)

    @event(CredentialRevoked)
    def _revoked(self, credential_hash: str, reason: str, actor: str) -> None:
        self.revoked.add(credential_hash)

    def open(self, actor: str) -> None:
        self.require(SessionState.FROZEN)
        self._opened(actor=actor)

    @event(Opened)
    def _opened(self, actor: str) -> None:
        self.state = SessionState.OPEN

    def close(self, cut_position: int, result: SessionResult, trackers: list[str],
              actor: str) -> None:
        self.require(SessionState.OPEN)
        self._closed(cut_position=cut_position, result=result, trackers=sorted(trackers),
                     actor=actor)

    @event(Closed)
    def _closed(self, cut_position: int, result: SessionResult, trackers: list[str],
                actor: str) -> None:
        self.state, self.cut_position, self.result = SessionState.CLOSED, cut_position, result
        self.trackers = trackers

    def void(self, reason: str, authority: str, actor: str) -> None:
        self.require(SessionState.FROZEN, SessionState.OPEN, SessionState.CLOSED)
        self._voided(reason=reason, authority=authority, actor=actor)

    @event(Voided)
    def _voided(self, reason: str, authority: str, actor: str) -> None:
        self.state = SessionState.VOIDED

    def class_of(self, credential_hash: str) -> str:
        """The rater class of a usable credential (refusals name the rule, never the reason
        a stranger could learn more from than 'not valid here')."""
        if credential_hash not in self.credentials:
            msg = "this credential is not valid for this session"
            raise InvalidInput(msg, rule="credential.valid", field="credential")
        if credential_hash in self.revoked:
            msg = "this credential was revoked"
            raise InvalidInput(msg, rule="credential.revoked", field="credential")
        return self.credentials[credential_hash]


class Ballot(Aggregate):
    """选票: one credential's ballot. Carries the credential's hash, class and answers —
    never who cast it, from where, or when more precisely than the session's granularity."""

    TOPIC = "kaoping/Ballot"

    class Created(Aggregate.Created):
        TOPIC = "kaoping/Ballot.Created"  # base only; never stored

    class Cast(Created):
        TOPIC = "kaoping/Ballot.Cast.v1"
        session: str
        rater_class: str
        credential_hash: str
        answers: dict[str, dict[str, str]]  # subject -> item -> option code

    class Replaced(Aggregate.Event):
        TOPIC = "kaoping/Ballot.Replaced.v1"
        answers: dict[str, dict[str, str]]

    @event(Cast)
    def __init__(self, session: str, rater_class: str, credential_hash: str,
                 answers: dict[str, dict[str, str]]) -> None:
        self.session, self.rater_class = session, rater_class
        self.credential_hash, self.answers = credential_hash, answers

    @event(Replaced)
    def replace(self, answers: dict[str, dict[str, str]]) -> None:
        self.answers = answers


def cast_event(stream: UUID, at: datetime, session: str, rater_class: str, digest: str,
               answers: dict[str, dict[str, str]]) -> Ballot.Cast:
    """A ballot's first event, built directly (no aggregate): the group-commit writer stores
    events, and the caller chooses the coarsened timestamp."""
    event_class: Any = Ballot.Cast  # the library's metaclass hides the dataclass fields
    cast: Ballot.Cast = event_class(
        originator_id=stream, originator_version=1, timestamp=at,
        originator_topic=Ballot.TOPIC, session=session, rater_class=rater_class,
        credential_hash=digest, answers=answers)
    return cast


def replaced_event(stream: UUID, version: int, at: datetime,
                   answers: dict[str, dict[str, str]]) -> Ballot.Replaced:
    event_class: Any = Ballot.Replaced
    replaced: Ballot.Replaced = event_class(originator_id=stream, originator_version=version,
                                            timestamp=at, answers=answers)
    return replaced


# --- the tally ------------------------------------------------------------------------------

class CountedBallot(msgspec.Struct, frozen=True):
    """A ballot as the tally sees it: its latest answers and the position of its last event."""

    rater_class: str
    answers: dict[str, dict[str, str]]
    position: int


class ClassTally(msgspec.Struct, frozen=True, kw_only=True):
    rater_class: str
    eligible: int  # 应到
    issued: int
    used: int  # 实到: ballots in time, valid or not
    valid: int
    invalid: int
    late: int
    quorum_met: bool
    required: int = 0  # the fewest ballots that meet quorum (0 in results before tally/2)


class QuorumFailure(msgspec.Struct, frozen=True, kw_only=True):
    """A rater class below quorum: the session gives no result (测评无效)."""

    rater_class: str
    present: int  # 实到
    eligible: int  # 应到
    required: int


class Withheld(StrEnum):
    QUORUM_FAILED = "quorum-failed"  # a class below quorum: no subject gets a result
    TOO_FEW_VALID = "too-few-valid"  # fewer than k valid ballots for this subject
    # Only on the public board: the subject's tally is not for the public (its kind is not one
    # the scheme's publication policy makes public, or the cycle is not published yet).
    NOT_PUBLIC = "not-public"


class SubjectTally(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    valid_ballots: int
    withheld: bool  # no counts and no score (see ``withheld_reason``)
    counts: dict[str, dict[str, int]] | None  # item -> option -> votes
    class_scores: dict[str, Decimal] | None
    score: Decimal | None  # 0–100, class-weighted
    withheld_reason: Withheld | None = None


class Outcome(StrEnum):
    COUNTED = "counted"  # every class met quorum: subjects with k valid ballots have results
    QUORUM_FAILED = "quorum-failed"  # 测评无效: no subject has a result


class SessionResult(msgspec.Struct, frozen=True, kw_only=True):
    version: str
    classes: list[ClassTally]
    subjects: list[SubjectTally]
    invalid_reasons: dict[str, int]
    quorum_failed: list[QuorumFailure] = []  # any entry: the session has no result

    @property
    def outcome(self) -> Outcome:
        return Outcome.QUORUM_FAILED if self.quorum_failed else Outcome.COUNTED


def check_answers(d: SessionDefinition, answers: dict[str, dict[str, str]]) -> None:
    """A ballot names only what its sheet has: its subjects, items and options. (A ballot that
    leaves some out is kept and counted as invalid, like a spoilt paper; one that writes in
    anything else is refused before it is stored: the log keeps every ballot for ever, and
    free text could mark a ballot as someone's.)"""
    subjects, items = set(d.subjects), {i.code for i in d.items}
    options = {o.code for o in d.options}
    for subject, answered in answers.items():
        where = f"answers.{subject}"
        if subject not in subjects:
            msg = f"{subject!r} is not a subject on this ballot"
            raise InvalidInput(msg, rule="ballot.answers", field="answers")
        for item, option in answered.items():
            if item not in items:
                msg = f"{item!r} is not an item on this ballot"
                raise InvalidInput(msg, rule="ballot.answers", field=where)
            if option not in options:
                msg = f"{option!r} is not an option on this ballot"
                raise InvalidInput(msg, rule="ballot.answers", field=f"{where}.{item}")


def ballot_problem(d: SessionDefinition, answers: dict[str, dict[str, str]]) -> str | None:
    """Why a ballot is invalid under the session's rules, or None if it is valid."""
    options = {o.code for o in d.options}
    items = {i.code for i in d.items}
    if set(answers) != set(d.subjects):
        return "subjects"
    chosen: list[str] = []
    for subject in d.subjects:
        if set(answers[subject]) != items or not set(answers[subject].values()) <= options:
            return "items"
        chosen += [answers[subject][i.code] for i in d.items]
    rules = d.rules
    limit = top_limit(rules, len(d.subjects))
    if limit is not None and (
            sum(1 for s in d.subjects if rules.top_option in answers[s].values()) > limit):
        return "too-many-top"
    # A ballot that says the same of everyone on every item tells the subjects apart in
    # nothing; with fewer subjects than the rule names it is a sincere view (all 优秀 for the
    # only subject), not a careless one.
    if (rules.identical_invalid and len(d.subjects) >= rules.identical_min_subjects
            and len(chosen) > 1 and len(set(chosen)) == 1):
        return "identical"
    return None


def _item_score(counts: Counter[str], d: SessionDefinition) -> Decimal | None:
    counted = [o for o in d.options if o.counted and counts[o.code]]
    total = sum(counts[o.code] for o in counted)
    if not total:
        return None
    return sum((o.value * counts[o.code] for o in counted), Decimal(0)) / total


def _class_score(item_counts: dict[str, Counter[str]], d: SessionDefinition) -> Decimal | None:
    scores = [s for s in (_item_score(item_counts[i.code], d) for i in d.items) if s is not None]
    return sum(scores, Decimal(0)) / len(scores) if scores else None


def tally(d: SessionDefinition, issued: dict[str, int], ballots: list[CountedBallot],
          cut_position: int) -> SessionResult:
    """Counts, validity, quorum per class, k-withholding and the class-weighted score.

    Any class below quorum fails the session: no subject gets counts or a score (the class is
    never dropped and the others re-weighted, which would change what the session measured)."""
    reasons: Counter[str] = Counter()
    per_class: dict[str, list[CountedBallot]] = {c.code: [] for c in d.classes}
    late: Counter[str] = Counter()
    invalid: Counter[str] = Counter()
    for b in ballots:
        if b.position > cut_position:
            late[b.rater_class] += 1
            continue
        problem = ballot_problem(d, b.answers)
        if problem:
            reasons[problem] += 1
            invalid[b.rater_class] += 1
        else:
            per_class[b.rater_class].append(b)
    classes = []
    for c in d.classes:
        used, required = len(per_class[c.code]) + invalid[c.code], quorum_required(d.rules,
                                                                                   c.eligible)
        classes.append(ClassTally(
            rater_class=c.code, eligible=c.eligible, issued=issued.get(c.code, 0), used=used,
            valid=len(per_class[c.code]), invalid=invalid[c.code], late=late[c.code],
            quorum_met=used >= required, required=required))
    failed = [QuorumFailure(rater_class=t.rater_class, present=t.used, eligible=t.eligible,
                            required=t.required) for t in classes if not t.quorum_met]
    subjects = [_subject_tally(d, s, per_class, counted=not failed) for s in d.subjects]
    return SessionResult(version=TALLY_VERSION, classes=classes, subjects=subjects,
                         invalid_reasons=dict(sorted(reasons.items())), quorum_failed=failed)


def _subject_tally(d: SessionDefinition, subject: str, by_class: dict[str, list[CountedBallot]],
                   *, counted: bool) -> SubjectTally:
    valid = sum(len(v) for v in by_class.values())
    reason = (None if counted and valid >= d.rules.min_valid
              else Withheld.TOO_FEW_VALID if counted else Withheld.QUORUM_FAILED)
    if reason is not None:
        return SubjectTally(subject=subject, valid_ballots=valid, withheld=True, counts=None,
                            class_scores=None, score=None, withheld_reason=reason)
    counts: dict[str, Counter[str]] = {i.code: Counter() for i in d.items}
    class_scores: dict[str, Decimal] = {}
    for cls, cast in sorted(by_class.items()):
        mine: dict[str, Counter[str]] = {i.code: Counter() for i in d.items}
        for b in cast:
            for item, option in b.answers[subject].items():
                mine[item][option] += 1
                counts[item][option] += 1
        score = _class_score(mine, d)
        if score is not None:
            class_scores[cls] = score
    weights = {c.code: c.weight for c in d.classes if c.code in class_scores}
    total = sum(weights.values(), Decimal(0))
    score = (sum((weights[c] * s for c, s in class_scores.items()), Decimal(0)) / total
             ).quantize(Decimal("0.01")) if total else None
    return SubjectTally(
        subject=subject, valid_ballots=valid, withheld=False,
        counts={i: dict(sorted(c.items())) for i, c in counts.items()},
        class_scores={c: s.quantize(Decimal("0.01")) for c, s in class_scores.items()},
        score=score)
