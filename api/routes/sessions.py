"""/api/v1/sessions — 民主测评 and 民意调查: sessions, credentials, casting, the public board."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import msgspec
import segno
from anyio import to_thread
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.params import FromPath, JSONBody

from api.auth import SECURITY, client_of, current_principal, optional_principal
from api.mechanisms import receipt, strict_body
from api.openapi import problems
from api.routes.common import WriteOut, write
from domain.ballots import (
    EvaluationSession,
    Outcome,
    QuorumFailure,
    SessionDefinition,
    SessionResult,
    SessionState,
    SubjectTally,
    Withheld,
    credential_hash,
)
from domain.cycle import Phase
from domain.errors import Conflict, InvalidInput, NotFound
from domain.text import text
from service.credential_sheet import credential_sheet, vote_url
from service.group_commit import VersionTaken
from service.idempotency import Reservation
from service.principals import Role

Text = Annotated[str, text(min_length=1, max_length=2000)]
Word = Annotated[str, text(min_length=1, max_length=64)]
T = TypeVar("T")


class IssueIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    rater_class: Word
    count: Annotated[int, msgspec.Meta(ge=1, le=5000)]


class IssuedOut(WriteOut, kw_only=True):
    rater_class: str
    codes: list[str]  # shown once; only their hashes are stored
    vote_urls: list[str]  # what each printed QR code opens (the code rides in the #fragment)
    sheet_svg: str  # the QR codes alone, on one SVG page
    # a print-ready page (A4): title, instructions in Chinese, one slip per code
    sheet_html: str


class RevokeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One of: the credential's code as printed on the slip, or its hash (a receipt's)."""

    credential: Word | None = None
    credential_hash: Word | None = None
    reason: Text


class VoidIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    reason: Text
    authority: Text


class Empty(msgspec.Struct, forbid_unknown_fields=True):
    pass


class CastIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    credential: Annotated[str, text(min_length=16, max_length=64)]
    answers: dict[Word, dict[Word, Word]]  # subject -> item -> option code


class CastOut(WriteOut, kw_only=True):
    """The ballot's receipt: its stream is derived from the session and the credential's hash,
    so it names no person."""

    session: str
    position: int  # the ballot's place in the public log
    tracker: str  # base64 leaf hash: check it against a checkpoint with the inclusion proof


class SessionOut(msgspec.Struct, kw_only=True):
    definition: SessionDefinition
    state: SessionState
    fingerprint: str | None
    issued: dict[str, int]
    cut_position: int | None
    version: int
    # after close: "counted", or "quorum-failed" with each class below quorum (实到/应到)
    outcome: Outcome | None = None
    quorum_failed: list[QuorumFailure] = []


class BoardOut(msgspec.Struct, kw_only=True):
    session: str
    fingerprint: str | None
    state: SessionState
    cut_position: int
    trackers: list[str]  # leaf hashes of the ballots counted, in sorted order
    outcome: Outcome  # "quorum-failed": no subject has a result (see result.quorum_failed)
    result: SessionResult


def _outcome(s: EvaluationSession) -> tuple[Outcome | None, list[QuorumFailure]]:
    return (None, []) if s.result is None else (s.result.outcome, s.result.quorum_failed)


def _session_out(s: EvaluationSession) -> SessionOut:
    issued: dict[str, int] = {}
    for rater_class in s.credentials.values():
        issued[rater_class] = issued.get(rater_class, 0) + 1
    outcome, failed = _outcome(s)
    return SessionOut(definition=s.definition, state=s.state, fingerprint=s.fingerprint,
                      issued=issued, cut_position=s.cut_position, version=s.version,
                      outcome=outcome, quorum_failed=failed)


def _board_out(s: EvaluationSession, shown: frozenset[str] | None = None) -> BoardOut:
    """The board; ``shown``: the subjects whose tallies the reader may see (None: all)."""
    if s.state not in (SessionState.CLOSED, SessionState.VOIDED) or s.result is None:
        msg = "the board is published when the session closes"
        raise Conflict(msg, rule="board.after-close")
    cut = s.cut_position if s.cut_position is not None else -1
    trackers = sorted(base64.b64encode(bytes.fromhex(t)).decode() for t in s.trackers)
    result = s.result if shown is None else msgspec.structs.replace(s.result, subjects=[
        t if t.subject in shown or t.withheld else SubjectTally(
            subject=t.subject, valid_ballots=t.valid_ballots, withheld=True, counts=None,
            class_scores=None, score=None, withheld_reason=Withheld.NOT_PUBLIC)
        for t in s.result.subjects])
    return BoardOut(session=s.definition.code, fingerprint=s.fingerprint, state=s.state,
                    cut_position=cut, trackers=trackers, outcome=s.result.outcome,
                    result=result)


# Who reads every subject's tally on a board before or beyond what is published.
BOARD_EVALUATORS = frozenset({Role.ORGANIZER, Role.COMMITTEE, Role.SUPERVISOR})


def _public_subjects(services: Any, code: str) -> tuple[bool, frozenset[str]]:
    """The subjects of a session whose tallies the public may read: those of the kinds the
    cycle's publication policy makes public, once the cycle is published (by default the
    leadership teams; a cadre's 民主测评 score is never public by default); and whether that
    is final (the cycle is published: publication is never undone)."""
    session = services.sessions.session(code)
    try:
        cycle = services.evaluation.cycle(session.definition.year)
    except NotFound:
        return False, frozenset()
    if cycle.phase != Phase.PUBLISHED:
        return False, frozenset()
    kinds = set(cycle.scheme.publication.public_kinds)
    public = {e.subject for e in cycle.roster if e.kind in kinds}
    return True, frozenset(s for s in session.definition.subjects if s in public)


async def public_view(state: State, code: str, name: str,
                      build: Callable[[EvaluationSession], T]) -> T:
    """Public reads are served from views built once per version of the session: on the
    event loop while the session is known current, else after one check off the loop."""
    sessions = state.services.sessions
    view: T | None = sessions.cached_view(code, name, build)
    if view is not None:
        return view
    fresh: T = await to_thread.run_sync(sessions.public_view, code, name, build)
    return fresh


def _sheet(urls: list[str], codes: list[str]) -> str:
    """An A4-proportioned SVG page: one QR code and its code per slip."""
    cols, cell = 3, 240
    rows = (len(urls) + cols - 1) // cols
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{cols * cell}" '
             f'height="{rows * cell}" viewBox="0 0 {cols * cell} {rows * cell}">']
    for i, (url, code) in enumerate(zip(urls, codes, strict=True)):
        x, y = (i % cols) * cell, (i // cols) * cell
        inline = segno.make(url, error="m").svg_inline(scale=4, border=2)
        path = re.search(r"<path[^>]*/>", inline)
        parts.append(f'<g transform="translate({x + 20},{y + 10})">{path.group(0) if path else ""}'
                     f'</g><text x="{x + 20}" y="{y + cell - 16}" font-size="11" '
                     f'font-family="monospace">{code}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _sheet_html(app_state: State, code: str, rater_class: str, codes: list[str],
                base: str) -> str:
    session = app_state.services.sessions.session(code)
    d = session.definition
    label = next((c.label for c in d.classes if c.code == rater_class), rater_class)
    return credential_sheet(d, label, codes, base, app_state.subject_names.load(d.year))


class SessionController(Controller):
    path = "/sessions"
    tags = ["evaluations"]  # noqa: RUF012 -- Litestar's own attribute

    @post("/", status_code=201, security=SECURITY,
          before_request=strict_body(SessionDefinition), summary="Define a session",
          responses=problems(400, 401, 403, 409, 422))
    async def define(self, request: Request[Any, Any, Any],
                     data: JSONBody[SessionDefinition]) -> Response[WriteOut]:
        """Subjects, items, options with their values, rater classes with weights and eligible
        counts, and the rules (quorum, k, per-ballot limits, granularity). Organizer."""
        return await write(request, 201, lambda p, after: request.app.state.services.sessions
                           .define(p, data, after_append=after))

    @get("/{code:str}", opt={"public": True}, summary="Read a session",
         responses=problems(404))
    async def read(self, state: State, code: FromPath[str]) -> SessionOut:
        """The definition, its fingerprint once frozen, the state, credentials issued per
        class (counts only) and, once closed, the outcome: "quorum-failed" names each class
        below quorum with 实到 (present), 应到 (eligible) and the number required."""
        return await public_view(state, code, "session", _session_out)

    @post("/{code:str}/freeze", status_code=201, security=SECURITY,
          before_request=strict_body(Empty), summary="Freeze a session",
          responses=problems(400, 401, 403, 404, 409))
    async def freeze(self, request: Request[Any, Any, Any], code: FromPath[str],
                     data: JSONBody[Empty]) -> Response[WriteOut]:
        """Freeze the definition; its fingerprint (SHA-256) goes on the public board."""
        return await write(request, 201, lambda p, after: request.app.state.services.sessions
                           .freeze(p, code, after_append=after))

    @post("/{code:str}/credentials", status_code=201, security=SECURITY,
          before_request=strict_body(IssueIn), summary="Issue one-time credentials",
          responses=problems(400, 401, 403, 404, 409, 422))
    async def issue(self, request: Request[Any, Any, Any], code: FromPath[str],
                    data: JSONBody[IssueIn]) -> Response[IssuedOut]:
        """N codes of 128 bits for one rater class, returned once (with a printable sheet of QR
        codes) and never stored: only their hashes are. Exempt from Idempotency-Key: a retry
        with a key already used answers 409 and issues nothing."""
        services = request.app.state.services
        principal = current_principal(request)
        key = request.headers.get("idempotency-key")
        held: Reservation | None = None
        if key is not None:
            digest = f"credentials:{code}".encode()
            first = await to_thread.run_sync(services.idempotency.reserve, principal.id, key,
                                             digest, services.clock.now())
            if not isinstance(first, Reservation):
                msg = "these credentials were issued already and are never shown again"
                raise Conflict(msg, rule="credentials.shown-once", field="Idempotency-Key")
            held = first
        try:
            written, codes = await to_thread.run_sync(
                lambda: services.sessions.issue(principal, code, data.rater_class, data.count))
        except BaseException:
            if key is not None and held is not None:
                await to_thread.run_sync(services.idempotency.release, principal.id, key, held)
            raise
        if key is not None:
            await to_thread.run_sync(services.idempotency.mark_done, principal.id, key, 201,
                                     written.stream_id, written.version)
        base = request.app.state.public_base_url or str(request.base_url)
        urls = [vote_url(base, code, c) for c in codes]
        html = await to_thread.run_sync(_sheet_html, request.app.state, code, data.rater_class,
                                        codes, base)
        return Response(IssuedOut(stream_id=written.stream_id, version=written.version,
                                  rater_class=data.rater_class, codes=codes, vote_urls=urls,
                                  sheet_svg=_sheet(urls, codes), sheet_html=html,
                                  receipt=receipt(written.leaves)),
                        status_code=201, headers={"Cache-Control": "no-store"})

    @post("/{code:str}/credentials/revocations", status_code=201, security=SECURITY,
          before_request=strict_body(RevokeIn), summary="Revoke a credential",
          responses=problems(400, 401, 403, 404, 409, 422))
    async def revoke(self, request: Request[Any, Any, Any], code: FromPath[str],
                     data: JSONBody[RevokeIn]) -> Response[WriteOut]:
        """Revoke a credential, with a reason (e.g. a lost slip): by its code as printed on the
        slip (``credential``), or by its hash (``credential_hash``). Only the hash is stored."""
        if (data.credential is None) == (data.credential_hash is None):
            msg = "give exactly one of credential (the printed code) and credential_hash"
            raise InvalidInput(msg, rule="credential.one-of", field="credential")
        digest = data.credential_hash or credential_hash(code, data.credential or "")
        return await write(request, 201, lambda p, after: request.app.state.services.sessions
                           .revoke(p, code, digest, data.reason, after_append=after))

    @post("/{code:str}/open", status_code=201, security=SECURITY,
          before_request=strict_body(Empty), summary="Open for ballots",
          responses=problems(400, 401, 403, 404, 409, 422))
    async def open(self, request: Request[Any, Any, Any], code: FromPath[str],
                   data: JSONBody[Empty]) -> Response[WriteOut]:
        """Open the session for ballots."""
        return await write(request, 201, lambda p, after: request.app.state.services.sessions
                           .open(p, code, after_append=after))

    @post("/{code:str}/close", status_code=201, security=SECURITY,
          before_request=strict_body(Empty), summary="Close and tally",
          responses=problems(400, 401, 403, 404, 409, 422))
    async def close(self, request: Request[Any, Any, Any], code: FromPath[str],
                    data: JSONBody[Empty]) -> Response[WriteOut]:
        """Cut at the log's head (later ballots are kept, marked late, not counted), check each
        class's quorum (one class below it: no result for any subject), tally, and record each
        subject's score -- or why it has none -- in its file. Refused while a subject's score
        from another session's close stands (void that session first)."""
        return await write(request, 201, lambda p, after: request.app.state.services.sessions
                           .close(p, code, after_append=after))

    @post("/{code:str}/void", status_code=201, security=SECURITY,
          before_request=strict_body(VoidIn), summary="Void a session",
          responses=problems(400, 401, 403, 404, 409))
    async def void(self, request: Request[Any, Any, Any], code: FromPath[str],
                   data: JSONBody[VoidIn]) -> Response[WriteOut]:
        """Void the session (e.g. evidence of 拉票) with reason and authority; ballots are
        never edited or deleted. While the cycle is scoring, the scores its close recorded are
        withdrawn from the subjects' files."""
        return await write(request, 201, lambda p, after: request.app.state.services.sessions
                           .void(p, code, data.reason, data.authority, after_append=after))

    @post("/{code:str}/ballots", status_code=201, opt={"public": True},
          before_request=strict_body(CastIn), summary="Cast a ballot (no login)",
          tags=["ballots"], responses=problems(400, 409, 415, 422, 429))
    async def cast(self, request: Request[Any, Any, Any], state: State, code: FromPath[str],
                   data: JSONBody[CastIn]) -> CastOut:
        """One ballot per credential: a used credential is refused whatever its answers
        (unless the session allows revoting: then it replaces the ballot). A ballot names only
        its sheet's subjects, items and options. The tracker is the ballot's leaf hash; keep
        it from the first answer. Refused guesses are throttled (429)."""
        client, limiter = client_of(request), state.ballot_refusals
        if limiter.stale(code):  # shared budgets: read at most once a second, off the loop
            await to_thread.run_sync(limiter.refresh, code)
        refused = limiter.retry_after(client, code)
        if refused is not None:
            wait, rule = refused
            raise HTTPException(status_code=429, headers={"Retry-After": str(wait)},
                                detail="too many refused credentials; try again later",
                                extra={"rule": rule, "field": "credential"})
        sessions = state.services.sessions
        try:
            # Validation runs on the loop (the session is cached); only the commit waits, and it
            # waits without holding a worker thread: the writer resolves the future.
            ballot, session, at = sessions.prepare(code, data.credential, data.answers)
        except InvalidInput as exc:
            if exc.rule.startswith("credential."):
                if limiter.blocking:
                    await to_thread.run_sync(limiter.failed, client, code)
                else:
                    limiter.failed(client, code)
            raise
        try:
            leaf = await asyncio.wrap_future(sessions.writer.submit(ballot))
        except VersionTaken:
            leaf = await to_thread.run_sync(sessions.settle_used, session, ballot,
                                            data.answers, at)
        return CastOut(stream_id=leaf.stream_id, version=leaf.stream_version,
                       receipt=receipt([leaf]), session=code, position=leaf.position,
                       tracker=base64.b64encode(leaf.leaf_hash).decode())

    @get("/{code:str}/board", opt={"public": True}, summary="The public bulletin board",
         responses=problems(404, 409))
    async def board(self, request: Request[Any, Any, Any], state: State,
                    code: FromPath[str]) -> BoardOut:
        """After close: the fingerprint, the outcome (a class below quorum fails the session),
        issued/used/valid counts per class, every counted ballot's tracker in sorted order, and
        the tallies (withheld below k, and for every subject when quorum failed). A subject's
        tally is public only once its cycle is published and only for the kinds its policy
        makes public (withheld as ``not-public`` otherwise); the organizer, the committee and
        supervisors read every tally."""
        principal = optional_principal(request)
        if principal is not None and principal.role in BOARD_EVALUATORS:
            return await to_thread.run_sync(
                lambda: _board_out(state.services.sessions.session(code)))
        # A cycle's publication is final: once a session's public subjects are known they are
        # kept, and public reads of a published board touch the store no more than before.
        known: dict[str, frozenset[str]] = state.services.sessions.public_subjects
        if code in known:
            shown = known[code]
        else:
            final, shown = await to_thread.run_sync(_public_subjects, state.services, code)
            if final:
                known[code] = shown
        return await public_view(state, code, f"board:{len(shown)}",
                                 lambda s: _board_out(s, shown))
