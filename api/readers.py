"""Who may read what: every GET route of the app and its declared audience, in one table.

The handlers enforce their audience (role checks, the card gate of service/audience.py, the
case gate); tests/e2e/test_audiences.py calls every GET route as every kind of reader, on
published and unpublished results, and checks the answer against this table. A GET route
missing here fails that test, and is refused at run time (403 ``audience.undeclared``) by
``declared_audience`` rather than served to whoever asks.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from domain.errors import Forbidden


class Audience(StrEnum):
    PUBLIC = "public"  # anyone, no credentials needed
    SIGNED_IN = "signed-in"  # any principal; what it sees may depend on who (its own webhooks)
    EVALUATORS = "evaluators"  # organizer, committee, supervisors
    SUPERVISORS = "supervisors"
    # Published: the public kinds to anyone, every kind to evaluators; before: evaluators.
    RESULTS = "results"
    # Evaluators; investigators whose open case covers the subject; once published, the
    # subject itself, the appeal body if the subject filed an appeal (申诉), and anyone for
    # the kinds the publication policy makes public.
    SUBJECT_RESULT = "subject-result"
    SUBJECT_DETAIL = "subject-detail"  # as SUBJECT_RESULT, but never to the public
    # evaluators; investigators whose case covers the subject; the appeal body once the
    # subject filed an appeal
    EVIDENCE = "evidence"
    # Evaluators every row; the subject itself its own row; investigators their cases' rows.
    EXPORT_ROWS = "export-rows"
    CASE_FILE = "case-file"  # intake, supervisors, the case's investigator
    CASE_LIST = "case-list"  # investigators (their own cases), supervisors (all)
    # A subject's documents: evaluators, its assigned assessment team, the leaders who review
    # it (service/team_review.py), the subject itself; each read recorded.
    DOCUMENTS = "documents"


C = "/api/v1/cycles/{year}"
S = C + "/subjects/{subject}"

AUDIENCES: dict[str, Audience] = {
    # operations and documents
    "/": Audience.PUBLIC,  # the landing page: links only
    "/home.css": Audience.PUBLIC,
    "/health": Audience.PUBLIC,
    "/ready": Audience.PUBLIC,
    "/vote/{code}": Audience.PUBLIC,  # the ballot page: the credential is the key
    "/vote/{code}/board": Audience.PUBLIC,  # the board as a page: counts and trackers
    "/schema": Audience.PUBLIC,
    "/schema/openapi.json": Audience.PUBLIC,
    "/schema/swagger": Audience.PUBLIC,
    "/schema/oauth2-redirect.html": Audience.PUBLIC,
    "/schema/{path}": Audience.PUBLIC,
    "/assets/{file_path}": Audience.PUBLIC,  # the pages' own scripts and styles (vendored)
    "/api/v1/auth/jwks": Audience.PUBLIC,
    "/api/v1/operations/rebuild-check": Audience.SUPERVISORS,
    # the cycle and its public documents
    C: Audience.PUBLIC,
    C + "/scheme": Audience.PUBLIC,
    C + "/roster": Audience.PUBLIC,  # the subjects the 公告 names (seed method)
    C + "/announcement": Audience.PUBLIC,
    # 责任承诺考实: every unit's targets, history and challenge counts; no achievement, no score
    C + "/commitments": Audience.PUBLIC,
    C + "/commitments/{unit}": Audience.PUBLIC,
    C + "/corrections": Audience.PUBLIC,
    C + "/notice": Audience.PUBLIC,  # 公示: the policy's grades, named only in its window
    C + "/results": Audience.RESULTS,
    C + "/corrections/pending": Audience.EVALUATORS,
    C + "/proposal": Audience.EVALUATORS,  # 审定: the proposal's fingerprint, its approval
    C + "/notice/status": Audience.EVALUATORS,  # 公示: objections per listed grade, finality
    C + "/exports/results": Audience.EXPORT_ROWS,
    # one subject's card
    S + "/result": Audience.SUBJECT_RESULT,
    S + "/explain": Audience.SUBJECT_DETAIL,
    S + "/history": Audience.SUBJECT_DETAIL,
    S + "/diff": Audience.SUBJECT_DETAIL,
    S + "/evidence": Audience.EVIDENCE,
    S + "/documents": Audience.DOCUMENTS,
    S + "/documents/{sha256}": Audience.DOCUMENTS,
    S + "/document-reads": Audience.EVALUATORS,
    # the use of results (考核结果运用): personnel actions, never public
    S + "/uses": Audience.EVALUATORS,
    C + "/uses/due": Audience.EVALUATORS,
    # notification and feedback (书面通知, 个别反馈, 集中点评): as the card
    S + "/feedback": Audience.SUBJECT_DETAIL,
    C + "/feedback/due": Audience.EVALUATORS,
    # the 考核登记表 of a cadre (PDF, for the 干部档案): read as the cadre's card
    C + "/cadres/{code}/registration.pdf": Audience.SUBJECT_DETAIL,
    # reference data
    "/api/v1/units": Audience.PUBLIC,
    "/api/v1/units/{unit}": Audience.PUBLIC,
    "/api/v1/cadres": Audience.SIGNED_IN,  # personal details: never anonymous
    "/api/v1/cadres/{code}": Audience.SIGNED_IN,
    "/api/v1/leaders/{code}": Audience.EVALUATORS,  # posts and 分管/联系: the organizer's
    # the ledger (hashes, checkpoints and proofs are public; envelopes are not served here)
    "/api/v1/ledger/checkpoint": Audience.PUBLIC,
    "/api/v1/ledger/checkpoints": Audience.PUBLIC,
    "/api/v1/ledger/key": Audience.PUBLIC,
    "/api/v1/ledger/keys": Audience.PUBLIC,
    "/api/v1/ledger/leaves": Audience.PUBLIC,
    "/api/v1/ledger/proofs/inclusion": Audience.PUBLIC,
    "/api/v1/ledger/proofs/consistency": Audience.PUBLIC,
    # ballot sessions: definitions and the bulletin board are public (docs/ballots.md)
    "/api/v1/sessions/{code}": Audience.PUBLIC,
    "/api/v1/sessions/{code}/board": Audience.PUBLIC,
    # cases and the access record
    "/api/v1/cases": Audience.CASE_LIST,
    "/api/v1/cases/{case_id}": Audience.CASE_FILE,
    "/api/v1/reports/status": Audience.PUBLIC,  # the follow-up code is the key
    "/api/v1/audit/access": Audience.SUPERVISORS,
    # events and webhooks: what is served depends on the caller's role or ownership
    "/api/v1/events": Audience.SIGNED_IN,
    "/api/v1/events/stream": Audience.SIGNED_IN,
    "/api/v1/events/catalogue": Audience.PUBLIC,
    "/api/v1/events/schemas/{type_name}": Audience.PUBLIC,
    "/api/v1/webhooks/subscriptions": Audience.SIGNED_IN,
    "/api/v1/webhooks/subscriptions/{subscription_id}": Audience.SIGNED_IN,
    "/api/v1/webhooks/subscriptions/{subscription_id}/deliveries": Audience.SIGNED_IN,
}


async def declared_audience(connection: ASGIConnection[Any, Any, Any, Any],
                            _: BaseRouteHandler) -> None:
    """A guard: a GET route nobody declared an audience for is served to nobody. Async: a
    sync guard is run in a worker thread on every request (a thread hop per ballot)."""
    if connection.scope.get("method") != "GET":
        return
    template = str(connection.scope.get("path_template", ""))
    if template not in AUDIENCES:
        msg = f"{template} declares no audience (api/readers.py)"
        raise Forbidden(msg, rule="audience.undeclared")
