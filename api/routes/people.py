"""/api/v1/cadres, /api/v1/leaders, /api/v1/imports — people and bulk reference data."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from anyio import to_thread
from litestar import Controller, Request, Response, get, patch, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter

from api.auth import SECURITY, current_principal
from api.mechanisms import (
    INT64,
    decode_cursor,
    etag,
    expected_version,
    next_page,
    strict_body,
    wait_for_projection,
)
from api.openapi import problems
from api.routes.common import WriteOut, write
from domain.people import Charge, LeaderBody, LeaderCharge, LeaderPost, PostRole
from domain.text import NAME_MAX, code_text, name_text, text, visible_name_text
from domain.units import UnitKind
from projections.cadres import CadreRow, CadresView, list_cadres

Code = Annotated[str, code_text(examples=["C-0001"])]
# An existing unit, named by its code: the form codes had before code_text (units registered
# then keep theirs); whether it exists is the service's check.
UnitRef = Annotated[str, text(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$", examples=["XZ-01"])]
Name = Annotated[str, visible_name_text(max_length=NAME_MAX)]
IsoDate = Annotated[str, text(pattern=r"^\d{4}-\d{2}-\d{2}$", examples=["2025-01-01"])]
Text = Annotated[str, text(min_length=1, max_length=500)]
# Import rows are checked row by row by the service (every bad row listed); here only as text.
Cell = Annotated[str, text(max_length=500)]


class RegisterCadre(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code: Code
    name: Name
    unit_code: UnitRef
    role: PostRole
    since: IsoDate


class ChangePost(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    unit_code: UnitRef
    role: PostRole
    since: IsoDate
    reason: Text


class CadreOut(msgspec.Struct, kw_only=True):
    code: str
    name: str
    unit_code: str
    role: PostRole
    since: str
    version: int


class CadrePage(msgspec.Struct, kw_only=True):
    items: list[CadreOut]
    next_cursor: str | None


class RegisterLeader(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code: Code
    name: Name


Title = Annotated[str, name_text(max_length=20, examples=["副市长"])]


class PostIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    body: LeaderBody  # 四大班子: party-committee 市委, congress 人大, government 政府, cppcc 政协
    title: Title  # 书记, 副书记, 常委, 市长, 副市长, 主任, 主席 …: the scheme weighs scores by it
    unit_code: UnitRef | None = None  # the unit the post heads or belongs to (回避)


class ChargeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    unit_code: UnitRef
    relation: Charge  # in-charge 分管, liaison 联系


class LeaderPosts(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    posts: list[PostIn]
    charges: list[ChargeIn] = []
    since: IsoDate
    reason: Text


class LeaderOut(msgspec.Struct, kw_only=True):
    code: str
    name: str
    posts: list[LeaderPost]
    charges: list[LeaderCharge]
    since: str | None  # the date the current posts were taken from
    version: int


class UnitRow(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code: Cell
    name: Cell
    kind: UnitKind
    category: Cell


class CadreImportRow(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code: Cell
    name: Cell
    unit_code: Cell
    role: Cell
    since: Cell


class ImportBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    units: list[UnitRow] = []
    cadres: list[CadreImportRow] = []


def _cadre_out(row: CadreRow) -> CadreOut:
    return CadreOut(code=row.code, name=row.name, unit_code=row.unit_code,
                    role=PostRole(row.role), since=row.since, version=row.version)


class CadreController(Controller):
    path = "/cadres"
    tags = ["cadres"]  # noqa: RUF012 -- Litestar's own attribute

    @post("/", status_code=201, security=SECURITY, before_request=strict_body(RegisterCadre),
          summary="Register a cadre in a post", responses=problems(400, 401, 403, 404, 409, 422))
    async def register(self, request: Request[Any, Any, Any],
                       data: JSONBody[RegisterCadre]) -> Response[WriteOut]:
        """Register a cadre (领导干部) as principal or deputy of a unit (organizer)."""
        return await write(request, 201, lambda p, after: request.app.state.services.reference
                           .register_cadre(p, code=data.code, name=data.name,
                                           unit_code=data.unit_code, role=data.role,
                                           since=data.since, after_append=after))

    @patch("/{code:str}", security=SECURITY, before_request=strict_body(ChangePost),
           summary="Move a cadre to another post", responses=problems(400, 401, 403, 404, 412,
                                                                      422, 428))
    async def change_post(self, request: Request[Any, Any, Any], code: FromPath[str],
                          data: JSONBody[ChangePost]) -> Response[WriteOut]:
        """A new post (unit and role) from a date, with a reason; needs If-Match."""
        version = expected_version(request)
        return await write(request, 200, lambda p, after: request.app.state.services.reference
                           .change_post(p, code, unit_code=data.unit_code, role=data.role,
                                        since=data.since, reason=data.reason,
                                        expected_version=version, after_append=after))

    @get("/{code:str}", security=SECURITY, summary="Read a cadre",
         responses=problems(401, 404))
    async def read(self, state: State, code: FromPath[str]) -> Response[CadreOut]:
        """A cadre in their current post; the ETag is the cadre's version. Personal details:
        not for anonymous callers."""
        c = await to_thread.run_sync(state.services.reference.cadre, code)
        return Response(CadreOut(code=c.code, name=c.name, unit_code=c.unit_code, role=c.role,
                                 since=c.since, version=c.version),
                        headers={"ETag": etag(c.version)})

    @get("/", security=SECURITY, summary="List cadres", responses=problems(400, 401, 503))
    async def list(self, request: Request[Any, Any, Any], state: State,
                   cursor: Annotated[str | None, QueryParameter()] = None,
                   limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
                   unit_code: Annotated[str | None, QueryParameter()] = None,
                   min_position: Annotated[int | None, QueryParameter(ge=0, le=INT64)] = None,
                   ) -> Response[CadrePage]:
        """Cadres ordered by code; filter by unit; follow ``Link: rel="next"``. Not for
        anonymous callers."""
        services = state.services
        query = {"unit_code": unit_code}
        after = decode_cursor(cursor, query)
        await wait_for_projection(services, CadresView.name, min_position)

        def page() -> list[CadreRow]:
            with services.db.read() as cur:
                return list_cadres(cur, after_code=after, limit=limit + 1, unit_code=unit_code)

        rows = await to_thread.run_sync(page)
        items = [_cadre_out(r) for r in rows[:limit]]
        nxt, headers = next_page(request, len(rows), limit, items[-1].code if items else "",
                                 query)
        return Response(CadrePage(items=items, next_cursor=nxt), headers=headers)


class LeaderController(Controller):
    path = "/leaders"
    tags = ["cadres"]  # noqa: RUF012 -- Litestar's own attribute

    @post("/", status_code=201, security=SECURITY, before_request=strict_body(RegisterLeader),
          summary="Register a city leader", responses=problems(400, 401, 403, 409))
    async def register(self, request: Request[Any, Any, Any],
                       data: JSONBody[RegisterLeader]) -> Response[WriteOut]:
        """Register a city leader (市领导), who scores teams and principals."""
        return await write(request, 201, lambda p, after: request.app.state.services.reference
                           .register_leader(p, code=data.code, name=data.name,
                                            after_append=after))

    @put("/{code:str}/posts", security=SECURITY, before_request=strict_body(LeaderPosts),
         summary="Set a city leader's posts and charges",
         responses=problems(400, 401, 403, 404, 412, 422, 428))
    async def set_posts(self, request: Request[Any, Any, Any], code: FromPath[str],
                        data: JSONBody[LeaderPosts]) -> Response[WriteOut]:
        """The leader's posts in the 四大班子 (each with its title and, when it has one, the
        unit it heads or belongs to) and the units the leader is in charge of (分管) or liaises
        with (联系), from a date, with a reason; replaces the previous set, which stays in the
        leader's history. Organizer; needs If-Match. The scheme weighs a leader's scores by
        the post's title; a leader never scores a unit a post of theirs is in (回避)."""
        version = expected_version(request)
        posts = [LeaderPost(body=p.body, title=p.title, unit_code=p.unit_code)
                 for p in data.posts]
        charges = [LeaderCharge(unit_code=c.unit_code, relation=c.relation)
                   for c in data.charges]
        return await write(request, 200, lambda p, after: request.app.state.services.reference
                           .set_leader_posts(p, code, posts=posts, charges=charges,
                                             since=data.since, reason=data.reason,
                                             expected_version=version, after_append=after))

    @get("/{code:str}", security=SECURITY, summary="Read a city leader",
         responses=problems(401, 403, 404))
    async def read(self, request: Request[Any, Any, Any], state: State,
                   code: FromPath[str]) -> Response[LeaderOut]:
        """A city leader's current posts and 分管/联系 units; the ETag is the leader's
        version. Organizer, committee and supervisors."""
        principal = current_principal(request)
        leader = await to_thread.run_sync(state.services.reference.read_leader, principal,
                                          code)
        return Response(LeaderOut(code=leader.code, name=leader.name, posts=leader.posts,
                                  charges=leader.charges, since=leader.since,
                                  version=leader.version),
                        headers={"ETag": etag(leader.version)})


class ImportController(Controller):
    path = "/imports"
    tags = ["units"]  # noqa: RUF012 -- Litestar's own attribute

    @post("/", status_code=201, security=SECURITY, before_request=strict_body(ImportBody),
          summary="Import units and cadres", responses=problems(400, 401, 403, 409, 422))
    async def run(self, request: Request[Any, Any, Any],
                  data: JSONBody[ImportBody]) -> Response[WriteOut]:
        """Register many units and cadres at once: all or nothing. A refusal lists every bad
        row (``errors[].field`` is e.g. ``cadres[3].unit_code``, with its rule)."""
        units = [msgspec.structs.asdict(u) | {"kind": u.kind.value} for u in data.units]
        cadres = [msgspec.structs.asdict(c) for c in data.cadres]
        return await write(request, 201, lambda p, after: request.app.state.services.reference
                           .import_rows(p, units=units, cadres=cadres, after_append=after))
