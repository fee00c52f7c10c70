"""Use cases of the assessment team (考核组): its assignment to subjects, the subjects'
documents (by hash), 听谈看议 findings, each member's 实绩分析 scores (集体议绩) and the 评语.

Authorisation by role *and* assignment: a member acts as ``team-member:<id>`` and works only on
the subjects the organizer assigned them; a document is read only by those who review its
subject, and every read is recorded (service/cases.py's access record).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from domain.cycle import RosterEntry, cadre_subject, team_subject
from domain.documents import (
    SHA256,
    check_content,
    check_kind,
    check_media_type,
    check_name,
    content_hash,
)
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from domain.scheme import check_score
from domain.subject_file import SubjectFile
from service.guards import guarded
from service.policy import require_role
from service.principals import IdentityKind, Principal, Role

if TYPE_CHECKING:
    from decimal import Decimal

    from service.cases import Cases
    from service.db import Cursor, Database
    from service.evaluation import Evaluation
    from service.store import AfterAppend
    from service.writes import Written

READERS = frozenset({Role.ORGANIZER, Role.COMMITTEE, Role.SUPERVISOR})  # and the reviewers


class TeamReviews:
    def __init__(self, evaluation: Evaluation, db: Database, cases: Cases,
                 document_max_bytes: int) -> None:
        self.ev, self.db, self.cases = evaluation, db, cases
        self.max_bytes = document_max_bytes

    def _member(self, principal: Principal) -> str:
        require_role(principal, Role.ASSESSMENT_TEAM)
        return self.ev._identity(principal, IdentityKind.TEAM_MEMBER).id

    def _input(self, year: int, subject: str) -> tuple[Any, RosterEntry, SubjectFile]:
        return self.ev._input(year, subject)

    def _save(self, cycle: Any, entry: RosterEntry, file: SubjectFile,
              after_append: AfterAppend | None) -> Written:
        return self.ev._save_input(cycle, entry, file, after_append)

    # --- assignment ---------------------------------------------------------------------

    def assign(self, principal: Principal, year: int, subject: str, *, members: list[str],
               leader: str, after_append: AfterAppend | None = None) -> Written:
        """The organizer assigns a subject's assessment team (members and 组长)."""
        require_role(principal, Role.ORGANIZER)
        cycle, entry, file = self._input(year, subject)
        file.assign_team(members, leader, principal.id)
        return self._save(cycle, entry, file, after_append)

    # --- documents ----------------------------------------------------------------------

    def submit_document(self, principal: Principal, year: int, subject: str, *, kind: str,
                        name: str, content_type: str, content: bytes,
                        after_append: AfterAppend | None = None) -> Written:
        """The subject (acting as itself: ``unit:`` for its team, ``cadre:`` for a cadre) or
        the organizer for it uploads a document; the bytes are stored by their SHA-256 in the
        event's transaction (once: the same bytes again are the same row)."""
        cycle, entry, file = self._input(year, subject)
        if principal.role != Role.ORGANIZER:
            identity = self.ev._identity(principal, IdentityKind.CADRE,
                                         IdentityKind.UNIT)
            own = (cadre_subject(identity.id) if identity.kind == IdentityKind.CADRE
                   else team_subject(identity.id))
            if own != subject:
                msg = "a document is submitted by its subject, or by the organizer for it"
                raise Forbidden(msg, rule="document.own-subject")
        check_kind(kind, entry.kind)
        check_name(name)
        media = check_media_type(content_type)
        check_content(content, media, self.max_bytes)
        digest = content_hash(content)
        file.submit_document(kind, digest, len(content), media, name, principal.id)
        stored_at = self.ev.clock.now().isoformat()

        def store_blob(cur: Cursor) -> None:
            cur.execute("INSERT INTO kaoping_documents (sha256, size, media_type, content, "
                        "stored_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (sha256) DO NOTHING",
                        (digest, len(content), media, content, stored_at))

        return self._save(cycle, entry, file, guarded(after_append, store_blob))

    def documents(self, principal: Principal, year: int, subject: str) -> list[dict[str, Any]]:
        """The subject's documents in force (metadata only), for those who may read them."""
        cycle = self.ev.cycle(year)
        file = self.ev.file(year, subject)
        self._may_read(principal, cycle, cycle.entry(subject), file)
        return [file.documents[k] for k in sorted(file.documents)]

    def download(self, principal: Principal, year: int, subject: str,
                 sha256: str) -> tuple[bytes, str, str]:
        """(bytes, media type, name) of one of the subject's documents; the read is recorded,
        allowed or refused."""
        if not SHA256.match(sha256):
            msg = "a document is named by the lowercase hex SHA-256 of its bytes"
            raise InvalidInput(msg, rule="document.hash", field="sha256")
        cycle = self.ev.current(year)
        entry = cycle.entry(subject)
        file = self.ev.file(year, subject)
        try:
            rule = self._may_read(principal, cycle, entry, file)
        except Forbidden as exc:
            self.cases.record(principal, "document", year, subject, None, False,
                              exc.rule or "document.reader")
            raise
        if sha256 not in file.document_hashes:
            msg = f"{sha256} is not a document of {subject}"
            raise NotFound(msg, rule="document.exists", field="sha256")
        with self.db.read() as cur:
            cur.execute("SELECT content, media_type FROM kaoping_documents WHERE sha256 = %s",
                        (sha256,))
            row = cur.fetchone()
        if row is None:  # written in the event's transaction: removed behind our back
            msg = f"the bytes of {sha256} are missing"
            raise Conflict(msg, rule="document.stored")
        content = bytes(row[0])
        if content_hash(content) != sha256:  # append-only: changed behind our back
            msg = f"the stored bytes of {sha256} do not match their hash"
            raise Conflict(msg, rule="document.integrity")
        self.cases.record(principal, "document", year, subject, None, True, rule)
        # The media type this subject's upload recorded: the bytes are stored once by their
        # hash, so the row keeps the first uploader's (another subject's, perhaps) type.
        recorded = next((str(d["media_type"]) for d in file.documents.values()
                         if d["sha256"] == sha256), str(row[1]))
        return content, recorded, file.document_hashes[sha256]

    def _may_read(self, principal: Principal, cycle: Any, entry: RosterEntry,
                  file: SubjectFile) -> str:
        """The rule under which ``principal`` reads the subject's documents: the assigned
        assessment team, the leaders who review the subject, the organizer and supervisors,
        and the subject itself."""
        if principal.role in READERS:
            return "document.role"
        acts = principal.acts_as
        if principal.role == Role.ASSESSMENT_TEAM:
            member = self._member(principal)
            file.require_member(member)
            return "document.assigned-member"
        if acts is not None and (
                (acts.kind == IdentityKind.CADRE and cadre_subject(acts.id) == entry.subject)
                or (acts.kind == IdentityKind.UNIT and team_subject(acts.id) == entry.subject)):
            return "document.own-subject"
        if principal.role == Role.LEADER:
            try:
                self.ev._check_leader_assignment(principal, cycle, entry)
            except Forbidden:  # a scoring rule's words would not say why a read is refused
                pass
            else:
                return "document.reviewing-leader"
        msg = ("a subject's documents are read by its assessment team, its reviewing leaders, "
               "the organizer, supervisors and the subject itself")
        raise Forbidden(msg, rule="document.reader")

    # --- 听谈看议, 集体议绩, 评语 ---------------------------------------------------------

    def record_finding(self, principal: Principal, year: int, subject: str, *, activity: str,
                       summary: str, strengths: list[str], problems: list[str],
                       documents: list[str], after_append: AfterAppend | None = None) -> Written:
        member = self._member(principal)
        cycle, entry, file = self._input(year, subject)
        file.record_finding(activity, member, summary, strengths, problems, documents,
                            principal.id)
        return self._save(cycle, entry, file, after_append)

    def score_sheet(self, principal: Principal, year: int, subject: str, *,
                    scores: dict[str, Decimal], rationale: str,
                    after_append: AfterAppend | None = None) -> Written:
        """A member's 实绩分析 sheet: the scores of several dimensions of one subject in one
        write (the same events, and checks, as one score per dimension)."""
        member = self._member(principal)
        cycle, entry, file = self._input(year, subject)
        scheme = self.ev._scheme(cycle)
        if not scores:
            msg = "a sheet scores at least one dimension"
            raise InvalidInput(msg, rule="analysis.dimension", field="scores")
        for dimension, score in scores.items():
            check_score(score, f"scores.{dimension}")
            file.score_dimension(scheme, member, dimension, score, rationale, principal.id)
        return self._save(cycle, entry, file, after_append)

    def remark(self, principal: Principal, year: int, subject: str, *, remark: str,
               after_append: AfterAppend | None = None) -> Written:
        member = self._member(principal)
        cycle, entry, file = self._input(year, subject)
        file.conclude(remark, member, principal.id)
        return self._save(cycle, entry, file, after_append)
