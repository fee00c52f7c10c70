"""Cadres (领导干部) in their current posts, ordered by code."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from domain.people import Cadre
from service.db import as_uuid

if TYPE_CHECKING:
    from uuid import UUID

    from projections.follower import LoggedEvent
    from service.db import Cursor

_REGISTERED, _POST_CHANGED = Cadre.Registered.TOPIC, Cadre.PostChanged.TOPIC
_COLUMNS = ("cadre_id", "code", "name", "unit_code", "role", "since", "version", "position")


class CadresView:
    name: str = "cadres.v1"
    tables: tuple[str, ...] = ("rm_cadres",)

    def apply(self, cur: Cursor, events: Sequence[LoggedEvent]) -> None:
        # Batched like the units view: registrations first, then post changes in log order.
        updates: list[tuple[Any, ...]] = []

        def registrations() -> Iterator[tuple[Any, ...]]:
            for e in events:
                if e.topic == _REGISTERED:
                    ev = e.event
                    yield (e.stream_id, ev.code, ev.name, ev.unit_code, ev.role, ev.since,
                           e.version, e.position)
                elif e.topic == _POST_CHANGED:
                    ev = e.event
                    updates.append((ev.unit_code, ev.role, ev.since, e.version, e.position,
                                    e.stream_id))

        cur.insert_rows("rm_cadres", _COLUMNS, registrations())
        if updates:
            cur.executemany(
                "UPDATE rm_cadres SET unit_code = %s, role = %s, since = %s, version = %s, "
                "position = %s WHERE cadre_id = %s", updates)

class CadreRow:
    __slots__ = ("cadre_id", "code", "name", "role", "since", "unit_code", "version")

    def __init__(self, row: tuple[Any, ...]) -> None:
        cid, code, name, unit_code, role, since, version = row
        self.cadre_id: UUID = as_uuid(cid)
        self.code, self.name, self.unit_code = str(code), str(name), str(unit_code)
        self.role, self.since, self.version = str(role), str(since), int(version)


def list_cadres(cur: Cursor, *, after_code: str | None, limit: int,
                unit_code: str | None = None) -> list[CadreRow]:
    sql = ("SELECT cadre_id, code, name, unit_code, role, since, version FROM rm_cadres "
           "WHERE code > %s")
    params: list[object] = [after_code or ""]
    if unit_code is not None:
        sql += " AND unit_code = %s"
        params.append(unit_code)
    cur.execute(sql + " ORDER BY code LIMIT %s", [*params, limit])
    return [CadreRow(r) for r in cur.fetchall()]
