"""/api/v1/cycles/{year}/subjects/{subject}/… — the assessment team's work on a subject: its
assignment, the subject's documents (uploaded as bytes, stored by SHA-256, read by assignment
and every read recorded), 听谈看议 findings and the 评语. Member scores of the 实绩分析
dimensions go to ``/analysis`` (api/routes/inputs.py)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from anyio import to_thread
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter

from api.auth import SECURITY, current_principal
from api.mechanisms import strict_body, wait_for_projection
from api.openapi import problems
from api.routes.common import WriteOut, write
from domain.errors import Forbidden
from domain.text import text
from projections.cases import CasesView, access_log
from service.principals import Role

Member = Annotated[str, text(pattern=r"^[A-Za-z0-9._-]{1,64}$", examples=["khz-01"])]
Line = Annotated[str, text(min_length=1, max_length=500)]
Sha256 = Annotated[str, text(pattern=r"^[0-9a-f]{64}$")]
INPUT_ERRORS = problems(400, 401, 403, 404, 409, 415, 422)
INT64 = 2**63 - 1


class TeamIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    members: Annotated[list[Member], msgspec.Meta(min_length=1, max_length=50)]
    leader: Member  # the 组长: one of the members; records the 评语


class FindingIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    activity: Annotated[str, text(min_length=1, max_length=16, examples=["hear"])]
    summary: Annotated[str, text(min_length=1, max_length=5000)]
    strengths: Annotated[list[Line], msgspec.Meta(max_length=50)] = []
    problems: Annotated[list[Line], msgspec.Meta(max_length=50)] = []
    documents: Annotated[list[Sha256], msgspec.Meta(max_length=20)] = []


class RemarkIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    remark: Annotated[str, text(min_length=1, max_length=2000)]


class DocumentOut(msgspec.Struct, kw_only=True):
    kind: str
    sha256: str
    size: int
    media_type: str
    name: str


class DocumentRead(msgspec.Struct, kw_only=True):
    position: int
    reader: str
    role: str
    at: str
    allowed: bool
    rule: str
    count: int


def _team(request: Request[Any, Any, Any]) -> Any:
    return request.app.state.services.team_reviews


class TeamController(Controller):
    path = "/cycles/{year:int}/subjects/{subject:str}"

    @post("/team", status_code=201, security=SECURITY, tags=["assessment-team"],
          before_request=strict_body(TeamIn), summary="Assign the assessment team",
          responses=INPUT_ERRORS)
    async def assign(self, request: Request[Any, Any, Any], year: FromPath[int],
                     subject: FromPath[str], data: JSONBody[TeamIn]) -> Response[WriteOut]:
        """考核组: the members (``team-member`` identities) assigned to the subject and their
        leader (组长), by the organizer. Only they record findings and 实绩分析 scores for it,
        and each of them must score every dimension before the cycle is sealed."""
        return await write(request, 201, lambda p, after: _team(request).assign(
            p, year, subject, members=data.members, leader=data.leader, after_append=after))

    @post("/findings", status_code=201, security=SECURITY, tags=["assessment-team"],
          before_request=strict_body(FindingIn), summary="Record a 听谈看议 finding",
          responses=INPUT_ERRORS)
    async def finding(self, request: Request[Any, Any, Any], year: FromPath[int],
                      subject: FromPath[str], data: JSONBody[FindingIn]) -> Response[WriteOut]:
        """听 (hear: the principal's report), 谈 (talk: talks with the team and staff), 看
        (look: records and site visits), 议 (deliberate: on the work summary, reports and
        self-evaluation): a finding by an assigned member, citing the subject's documents by
        SHA-256. Restricted like the inspection notes."""
        return await write(request, 201, lambda p, after: _team(request).record_finding(
            p, year, subject, activity=data.activity, summary=data.summary,
            strengths=data.strengths, problems=data.problems, documents=data.documents,
            after_append=after))

    @post("/remark", status_code=201, security=SECURITY, tags=["assessment-team"],
          before_request=strict_body(RemarkIn), summary="Record the 评语",
          responses=INPUT_ERRORS)
    async def remark(self, request: Request[Any, Any, Any], year: FromPath[int],
                     subject: FromPath[str], data: JSONBody[RemarkIn]) -> Response[WriteOut]:
        """评语: the team's qualitative conclusion on the subject, by its leader (组长); the
        latest is shown on the score card."""
        return await write(request, 201, lambda p, after: _team(request).remark(
            p, year, subject, remark=data.remark, after_append=after))

    @post("/documents/{kind:str}/{name:str}", status_code=201, security=SECURITY,
          tags=["documents"], summary="Upload a document",
          responses=problems(400, 401, 403, 404, 409, 413, 422))
    async def upload(self, request: Request[Any, Any, Any], year: FromPath[int],
                     subject: FromPath[str], kind: FromPath[str],
                     name: FromPath[str]) -> Response[WriteOut]:
        """工作总结 (``work-summary``, teams), 述职述廉报告 (``duty-report``) or 自我评价
        (``self-evaluation``, cadres): the body is the document's bytes, its Content-Type one
        of application/pdf, application/ofd, Word (.docx) or text/plain (UTF-8); ``name`` its
        file name. Stored by SHA-256 (the receipt's event carries it); by the subject itself
        or the organizer for it."""
        content = await request.body()
        content_type = request.headers.get("content-type", "")
        return await write(request, 201, lambda p, after: _team(request).submit_document(
            p, year, subject, kind=kind, name=name, content_type=content_type,
            content=content, after_append=after))

    @get("/documents", security=SECURITY, tags=["documents"], summary="The subject's documents",
         responses=problems(401, 403, 404))
    async def documents(self, request: Request[Any, Any, Any], year: FromPath[int],
                        subject: FromPath[str]) -> list[DocumentOut]:
        """The documents in force (one per kind, the latest), for those who may read them:
        its assigned team, its reviewing leaders, the organizer, committee and supervisors,
        the subject itself."""
        principal = current_principal(request)
        rows = await to_thread.run_sync(lambda: _team(request).documents(
            principal, year, subject))
        return [DocumentOut(**r) for r in rows]

    @get("/documents/{sha256:str}", security=SECURITY, tags=["documents"],
         summary="Download a document", media_type="application/octet-stream",
         responses=problems(400, 401, 403, 404))
    async def download(self, request: Request[Any, Any, Any], year: FromPath[int],
                       subject: FromPath[str], sha256: FromPath[str]) -> Response[bytes]:
        """The document's bytes, with its media type and ``Digest``-style SHA-256 header; the
        read is recorded (who, when, under which rule), and so is a refused one."""
        principal = current_principal(request)
        content, media, name = await to_thread.run_sync(
            lambda: _team(request).download(principal, year, subject, sha256))
        return Response(content, media_type=media, headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "X-Content-SHA256": sha256, "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff"})

    @get("/document-reads", security=SECURITY, tags=["documents"],
         summary="Who read the subject's documents", responses=problems(401, 403, 503))
    async def reads(self, request: Request[Any, Any, Any], state: State, subject: FromPath[str],
                    after: Annotated[int, QueryParameter(ge=-1, le=INT64)] = -1,
                    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 200,
                    min_position: Annotated[int | None, QueryParameter(ge=0, le=INT64)] = None,
                    ) -> list[DocumentRead]:
        """Every read of the subject's documents, allowed or refused, in log order (organizer,
        committee, supervisors). Page with ``after`` = the last position seen."""
        if current_principal(request).role not in {Role.ORGANIZER, Role.COMMITTEE,
                                                   Role.SUPERVISOR}:
            msg = "the record of document reads is for the organizer and supervisors"
            raise Forbidden(msg, rule="document.reads-readers")
        services = state.services
        await wait_for_projection(services, CasesView.name, min_position)

        def rows() -> list[dict[str, Any]]:
            with services.db.read() as cur:
                return access_log(cur, subject=subject, after=after, limit=limit,
                                  what="document")

        return [DocumentRead(position=r["position"], reader=r["reader"], role=r["role"],
                             at=r["at"], allowed=r["allowed"], rule=r["rule"],
                             count=r["count"]) for r in await to_thread.run_sync(rows)]


def team_controller(document_max_bytes: int) -> type[Controller]:
    """The controller with the document upload's own body limit (KAOPING_DOCUMENT_MAX_BYTES)
    in place of the app's."""
    return type("TeamController", (TeamController,),
                {"request_max_body_size": document_max_bytes})
