"""Use cases for units (单位): register, rename, read."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain.errors import Conflict, NotFound, StaleVersion
from domain.text import check_code
from domain.units import Unit, UnitKind, register_unit
from service.policy import require_role
from service.principals import Principal, Role
from service.writes import Written, is_version_conflict, save

if TYPE_CHECKING:
    from service.store import AfterAppend, EventStore


class Units:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    def get(self, unit_id: UUID, version: int | None = None) -> Unit:
        try:
            unit: Unit = self.store.repository.get(unit_id, version=version)
        except AggregateNotFoundError:
            msg = f"no unit {unit_id}"
            raise NotFound(msg, rule="unit.exists", field="unit_id") from None
        return unit

    def register(self, principal: Principal, *, code: str, name: str, kind: UnitKind,
                 category: str, after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.ORGANIZER)
        unit = register_unit(check_code(code), name, kind, category, actor=principal.id)
        try:
            return save(self.store, unit, after_append=after_append, stream_id=unit.id)
        except IntegrityError as exc:
            if is_version_conflict(exc):
                msg = f"a unit with code {code!r} is already registered"
                raise Conflict(msg, rule="unit.code-unique", field="code") from None
            raise

    def rename(self, principal: Principal, unit_id: UUID, *, name: str, reason: str,
               expected_version: int, after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.ORGANIZER)
        unit = self.get(unit_id)
        if unit.version != expected_version:
            msg = f"unit {unit_id} is at version {unit.version}, not {expected_version}"
            raise StaleVersion(msg, current=unit.version)
        unit.rename(name, reason, actor=principal.id)
        try:
            return save(self.store, unit, after_append=after_append, stream_id=unit.id)
        except IntegrityError as exc:
            if is_version_conflict(exc):
                current = self.get(unit_id).version
                msg = f"unit {unit_id} changed concurrently; it is now at version {current}"
                raise StaleVersion(msg, current=current) from None
            raise
