"""/api/v1/units — units (单位): register, list (cursor), read (ETag), rename (If-Match)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from anyio import to_thread
from litestar import Controller, Request, Response, get, patch, post
from litestar.datastructures import State
from litestar.params import JSONBody, PathParameter, QueryParameter

from api.auth import SECURITY, current_principal
from api.mechanisms import (
    decode_cursor,
    etag,
    expected_version,
    next_page,
    perform,
    receipt,
    strict_body,
    wait_for_projection,
)
from api.openapi import problems
from api.routes.common import WriteOut
from domain.text import NAME_MAX, code_text, text, visible_name_text
from domain.units import Unit, UnitKind
from projections.units import UnitRow, UnitsView, list_units

Code = Annotated[str, code_text(examples=["XZ-01"], description="Unique unit code")]
Name = Annotated[str, visible_name_text(max_length=NAME_MAX, examples=["城关镇"])]
Text = Annotated[str, text(min_length=1, max_length=500)]
Category = Annotated[str, text(min_length=1, max_length=64, examples=["platform-1"])]


class RegisterUnit(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code: Code
    name: Name
    kind: UnitKind
    category: Category


class RenameUnit(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    reason: Text


class UnitOut(msgspec.Struct, kw_only=True):
    id: UUID
    code: str
    name: str
    kind: UnitKind
    category: str
    version: int


class UnitWritten(WriteOut, kw_only=True):
    unit: UnitOut


class UnitPage(msgspec.Struct, kw_only=True):
    items: list[UnitOut]
    next_cursor: str | None


def _out(unit: Unit) -> UnitOut:
    return UnitOut(id=unit.id, code=unit.code, name=unit.name, kind=unit.kind,
                   category=unit.category, version=unit.version)


def _row_out(row: UnitRow) -> UnitOut:
    return UnitOut(id=row.unit_id, code=str(row.code), name=str(row.name),
                   kind=UnitKind(row.kind), category=str(row.category), version=row.version)


Limit = Annotated[int, QueryParameter(ge=1, le=500, description="Page size")]
MinPosition = Annotated[int | None, QueryParameter(
    ge=0, description="Wait (up to 5 s) until the read model includes this log position")]


UnitRef = Annotated[str, PathParameter(
    description="The unit's code (as registered, e.g. D01) or its id (a UUID)",
    min_length=1, max_length=64)]


def unit_id_of(ref: str) -> UUID:
    """A unit is addressed by its code, like a cadre, or by its id; a unit's id is derived from
    its code (``Unit.id_for``), so both name the same stream and no lookup is needed."""
    try:
        return UUID(ref)
    except ValueError:
        return Unit.id_for(ref)


class UnitController(Controller):
    path = "/units"
    tags = ["units"]  # noqa: RUF012 -- Litestar's own attribute

    @post("/", status_code=201, security=SECURITY, before_request=strict_body(RegisterUnit),
          summary="Register a unit", responses=problems(400, 401, 403, 409, 415, 422))
    async def register(self, request: Request[Any, Any, Any], state: State,
                       data: JSONBody[RegisterUnit]) -> Response[UnitWritten]:
        """Register a township or department (organizer). The code is unique forever."""
        services, principal = state.services, current_principal(request)

        def command(after: Any) -> Any:
            return services.units.register(principal, code=data.code, name=data.name,
                                           kind=data.kind, category=data.category,
                                           after_append=after)

        status, written, replayed = await perform(request, services, principal, 201, command)
        return await self._written(services, written, status, replayed)

    @patch("/{unit:str}", security=SECURITY, before_request=strict_body(RenameUnit),
           summary="Rename a unit", responses=problems(400, 401, 403, 404, 412, 415, 422, 428))
    async def rename(self, request: Request[Any, Any, Any], state: State,
                     unit: UnitRef, data: JSONBody[RenameUnit]) -> Response[UnitWritten]:
        """Rename a unit, with a reason. Requires If-Match with the unit's current ETag."""
        services, principal = state.services, current_principal(request)
        version = expected_version(request)
        unit_id = unit_id_of(unit)

        def command(after: Any) -> Any:
            return services.units.rename(principal, unit_id, name=data.name, reason=data.reason,
                                         expected_version=version, after_append=after)

        status, written, replayed = await perform(request, services, principal, 200, command)
        return await self._written(services, written, status, replayed)

    @staticmethod
    async def _written(services: Any, written: Any, status: int,
                       replayed: bool) -> Response[UnitWritten]:
        unit = await to_thread.run_sync(services.units.get, written.stream_id, written.version)
        headers = {"ETag": etag(unit.version), "Location": f"/api/v1/units/{unit.id}"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(UnitWritten(stream_id=written.stream_id, version=written.version,
                                    unit=_out(unit), receipt=receipt(written.leaves)),
                        status_code=status, headers=headers)

    @get("/{unit:str}", opt={"public": True}, summary="Read a unit",
         responses=problems(400, 404))
    async def read(self, state: State, unit: UnitRef) -> Response[UnitOut]:
        """A unit as it is now, by its code (``D01``) or its id; its ETag is the unit's version,
        for If-Match on updates."""
        found = await to_thread.run_sync(state.services.units.get, unit_id_of(unit))
        return Response(_out(found), headers={"ETag": etag(found.version)})

    @get("/", opt={"public": True}, summary="List units", responses=problems(400, 503))
    async def list(self, request: Request[Any, Any, Any], state: State,
                   cursor: Annotated[str | None, QueryParameter(
                       description="Opaque cursor from a previous page's Link header")] = None,
                   limit: Limit = 100,
                   kind: Annotated[UnitKind | None, QueryParameter()] = None,
                   min_position: MinPosition = None) -> Response[UnitPage]:
        """Units ordered by code, a page at a time; follow ``Link: rel="next"``."""
        services = state.services
        query = {"kind": kind.value if kind else None}
        after = decode_cursor(cursor, query)
        await wait_for_projection(services, UnitsView.name, min_position)

        def page() -> list[UnitRow]:
            with services.db.read() as cur:
                return list_units(cur, after_code=after, limit=limit + 1, kind=query["kind"])

        rows = await to_thread.run_sync(page)
        items = [_row_out(r) for r in rows[:limit]]
        nxt, headers = next_page(request, len(rows), limit, items[-1].code if items else "",
                                 query)
        return Response(UnitPage(items=items, next_cursor=nxt), headers=headers)
