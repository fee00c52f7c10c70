"""/api/v1/cycles/{year}/… — the use of results (考核结果运用): decisions resting on a published
grade (提拔, 岗位调整, 诫勉谈话, 奖励 …) and the multi-year rules that make one due.

Personnel actions about a person: readable by the organizer, the committee and supervisors
only; recorded by the organizer (组织部) with the authority and document of the decision."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from anyio import to_thread
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from api.auth import SECURITY, current_principal
from api.mechanisms import strict_body
from api.openapi import problems
from api.routes.common import WriteOut, write
from domain.text import text
from domain.uses import Use, UseKind
from service.uses import Due

Text = Annotated[str, text(min_length=1, max_length=2000)]
IsoDate = Annotated[str, text(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class UseIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    kind: UseKind  # 提拔 promotion … 个别反馈 feedback
    decided_on: IsoDate
    authority: Text  # who decided, e.g. 市委常委会
    document: Text  # the decision's document number (文号) or minutes reference
    reason: Text


class UsesOut(msgspec.Struct, kw_only=True):
    year: int
    subject: str
    uses: list[Use]


class DueOut(msgspec.Struct, kw_only=True):
    year: int
    items: list[Due]


class UseController(Controller):
    path = "/cycles/{year:int}"
    tags = ["use of results"]  # noqa: RUF012 -- Litestar's own attribute

    @post("/subjects/{subject:str}/uses", status_code=201, security=SECURITY,
          before_request=strict_body(UseIn), summary="Record a use of a published result",
          responses=problems(400, 401, 403, 404, 409, 415, 422))
    async def record(self, request: Request[Any, Any, Any], year: FromPath[int],
                     subject: FromPath[str], data: JSONBody[UseIn]) -> Response[WriteOut]:
        """A decision that used the subject's published result (考核结果运用): promotion or
        an important post on the best grade, post adjustment, demotion, removal or a
        non-leadership post on the two lowest grades (seed 成效 四), a reward on the best
        grade; written explanation, admonishment talk and feedback on any result. The use
        records the results version in force and its fingerprint; a grade that does not
        support the use is refused (``use.grade-fits``)."""
        uses = request.app.state.services.uses
        return await write(request, 201, lambda p, after: uses.record(
            p, year, subject, kind=data.kind.value, decided_on=data.decided_on,
            authority=data.authority, document=data.document, reason=data.reason,
            after_append=after))

    @get("/subjects/{subject:str}/uses", security=SECURITY, summary="A result's uses",
         responses=problems(401, 403, 404))
    async def uses(self, request: Request[Any, Any, Any], year: FromPath[int],
                   subject: FromPath[str]) -> UsesOut:
        """The uses recorded on the subject's result of the year, oldest first, each with the
        grade and results version it rested on. Organizer, committee and supervisors."""
        principal = current_principal(request)
        found = await to_thread.run_sync(request.app.state.services.uses.of, principal, year,
                                         subject)
        return UsesOut(year=year, subject=subject, uses=found)

    @get("/uses/due", security=SECURITY, summary="Uses that multi-year rules make due",
         responses=problems(401, 403, 404, 409))
    async def due(self, request: Request[Any, Any, Any], year: FromPath[int]) -> DueOut:
        """Subjects whose published grades meet a multi-year rule ending this year
        (连续两年最低等次, 连续三年最高等次), with the uses that answer each and whether one
        is recorded. Organizer, committee and supervisors."""
        principal = current_principal(request)
        items = await to_thread.run_sync(request.app.state.services.uses.due, principal, year)
        return DueOut(year=year, items=items)
