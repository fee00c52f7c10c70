"""The list of units (单位), ordered by code, for cursor-paginated reads."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from domain.units import Unit
from service.db import as_uuid

if TYPE_CHECKING:
    from uuid import UUID

    from projections.follower import LoggedEvent
    from service.db import Cursor

_REGISTERED, _RENAMED = Unit.Registered.TOPIC, Unit.Renamed.TOPIC


class _Registered(msgspec.Struct):  # the fields of Unit.Registered this view keeps
    code: str
    name: str
    kind: str
    category: str


_COLUMNS = ("unit_id", "code", "name", "kind", "category", "version", "position")


class UnitsView:
    name: str = "units.v1"
    tables: tuple[str, ...] = ("rm_units",)
    # Built from zero without its indexes (projections/bulk.py): a registration is a row
    # copied in; a rename updates a row by its id, so it needs them.
    bulk_tables: tuple[str, ...] = ("rm_units",)
    index_topics: frozenset[str] = frozenset({_RENAMED})

    def apply(self, cur: Cursor, events: Sequence[LoggedEvent]) -> None:
        # Batched: every registration of the page (streamed into one COPY as it is decoded),
        # then every rename in log order (a unit is always registered before it is renamed,
        # so the last rename wins as it should).
        updates: list[tuple[Any, ...]] = []

        def registrations() -> Iterator[tuple[Any, ...]]:
            for e in events:
                if e.topic == _REGISTERED:
                    ev = e.fields(_Registered)
                    yield (e.stream_id, ev.code, ev.name, ev.kind, ev.category, e.version,
                           e.position)
                elif e.topic == _RENAMED:
                    ev = e.event
                    updates.append((ev.name, e.version, e.position, e.stream_id))

        cur.insert_rows("rm_units", _COLUMNS, registrations())
        if updates:
            cur.executemany("UPDATE rm_units SET name = %s, version = %s, position = %s "
                            "WHERE unit_id = %s", updates)

class UnitRow:
    __slots__ = ("category", "code", "kind", "name", "position", "unit_id", "version")

    def __init__(self, row: tuple[Any, ...]) -> None:
        uid, code, name, kind, category, version, position = row
        self.unit_id: UUID = as_uuid(uid)
        self.code, self.name, self.kind, self.category = str(code), str(name), str(kind), str(
            category)
        self.version, self.position = int(version), int(position)


def list_units(cur: Cursor, *, after_code: str | None, limit: int,
               kind: str | None = None) -> list[UnitRow]:
    sql = ("SELECT unit_id, code, name, kind, category, version, position FROM rm_units "
           "WHERE code > %s")
    params: list[object] = [after_code or ""]
    if kind is not None:
        sql += " AND kind = %s"
        params.append(kind)
    cur.execute(sql + " ORDER BY code LIMIT %s", [*params, limit])
    return [UnitRow(r) for r in cur.fetchall()]
