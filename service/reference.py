"""Reference data: cadres and city leaders, and the all-or-nothing bulk import of units and
cadres (every bad row reported with its row number, field and rule; nothing stored unless all
rows are good)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain.errors import Conflict, DomainError, InvalidInput, NotFound, StaleVersion
from domain.people import Cadre, Leader, LeaderCharge, LeaderPost, PostRole
from domain.text import check_code, check_name, first_non_text
from domain.units import Unit, UnitKind, register_unit
from service.policy import require_role
from service.principals import Principal, Role
from service.writes import Written, is_version_conflict, save

if TYPE_CHECKING:
    from service.store import AfterAppend, EventStore


def _check_date(value: str, field: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError:
        msg = f"{field} must be an ISO date (YYYY-MM-DD), not {value!r}"
        raise InvalidInput(msg, rule="date.iso", field=field) from None
    return value


class Reference:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    def _get(self, aggregate_id: UUID, what: str, field: str) -> Any:
        try:
            return self.store.repository.get(aggregate_id)
        except AggregateNotFoundError:
            msg = f"no {what} {field}"
            raise NotFound(msg, rule=f"{what}.exists", field=field) from None

    def unit(self, code: str) -> Unit:
        unit: Unit = self._get(Unit.id_for(code), "unit", code)
        return unit

    def cadre(self, code: str) -> Cadre:
        cadre: Cadre = self._get(Cadre.id_for(code), "cadre", code)
        return cadre

    def leader_exists(self, code: str) -> bool:
        return Leader.id_for(code) in self.store.repository

    def leader(self, code: str) -> Leader:
        leader: Leader = self._get(Leader.id_for(code), "leader", code)
        return leader

    def read_leader(self, principal: Principal, code: str) -> Leader:
        """A leader's posts and charges: for the organizer, the committee and supervisors."""
        require_role(principal, Role.ORGANIZER, Role.COMMITTEE, Role.SUPERVISOR)
        return self.leader(code)

    def set_leader_posts(self, principal: Principal, code: str, *, posts: list[LeaderPost],
                         charges: list[LeaderCharge], since: str, reason: str,
                         expected_version: int,
                         after_append: AfterAppend | None = None) -> Written:
        """A city leader's posts (四大班子) and 分管/联系 units from a date (organizer);
        every unit named must be registered."""
        require_role(principal, Role.ORGANIZER)
        for i, post in enumerate(posts):
            if post.unit_code is not None and Unit.id_for(post.unit_code) not in (
                    self.store.repository):
                msg = f"unit {post.unit_code!r} is not registered"
                raise InvalidInput(msg, rule="leader.unit-exists", field=f"posts[{i}].unit_code")
        for i, charge in enumerate(charges):
            if Unit.id_for(charge.unit_code) not in self.store.repository:
                msg = f"unit {charge.unit_code!r} is not registered"
                raise InvalidInput(msg, rule="leader.unit-exists",
                                   field=f"charges[{i}].unit_code")
        leader = self.leader(code)
        if leader.version != expected_version:
            msg = f"leader {code} is at version {leader.version}, not {expected_version}"
            raise StaleVersion(msg, current=leader.version)
        leader.set_posts(posts, charges, _check_date(since, "since"), reason, principal.id)
        return save(self.store, leader, after_append=after_append, stream_id=leader.id)

    def _save_new(self, aggregates: list[Any], after_append: AfterAppend | None,
                  what: str) -> Written:
        try:
            return save(self.store, *aggregates, after_append=after_append,
                        stream_id=aggregates[0].id)
        except IntegrityError as exc:
            if is_version_conflict(exc):
                msg = f"a {what} with that code is already registered"
                raise Conflict(msg, rule=f"{what}.code-unique", field="code") from None
            raise

    def register_cadre(self, principal: Principal, *, code: str, name: str, unit_code: str,
                       role: PostRole, since: str,
                       after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.ORGANIZER)
        check_code(code)
        self.unit(unit_code)
        cadre = Cadre(code=code, name=name, unit_code=unit_code, role=role.value,
                      since=_check_date(since, "since"), actor=principal.id)
        return self._save_new([cadre], after_append, "cadre")

    def change_post(self, principal: Principal, code: str, *, unit_code: str, role: PostRole,
                    since: str, reason: str, expected_version: int,
                    after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.ORGANIZER)
        self.unit(unit_code)
        cadre = self.cadre(code)
        if cadre.version != expected_version:
            msg = f"cadre {code} is at version {cadre.version}, not {expected_version}"
            raise StaleVersion(msg, current=cadre.version)
        cadre.change_post(unit_code, role, _check_date(since, "since"), reason, principal.id)
        return save(self.store, cadre, after_append=after_append, stream_id=cadre.id)

    def register_leader(self, principal: Principal, *, code: str, name: str,
                        after_append: AfterAppend | None = None) -> Written:
        require_role(principal, Role.ORGANIZER)
        leader = Leader(code=check_code(code), name=name, actor=principal.id)
        return self._save_new([leader], after_append, "leader")

    def import_rows(self, principal: Principal, *, units: list[dict[str, str]],
                    cadres: list[dict[str, str]],
                    after_append: AfterAppend | None = None) -> Written:
        """Register every unit and cadre in one transaction, or none; report every bad row."""
        require_role(principal, Role.ORGANIZER)
        # A CSV import (kaoping import) reaches here without the API's strict decoder.
        errors: list[tuple[str, str, str]] = [
            (f"{what}[{i}].{field}", "text.characters", f"{bad} is not text")
            for what, rows in (("units", units), ("cadres", cadres))
            for i, row in enumerate(rows, start=1) for field, value in row.items()
            if (bad := first_non_text(f"{field}{value}")) is not None]
        if errors:
            msg = f"{len(errors)} value(s) are not text; nothing was imported"
            raise InvalidInput(msg, rule="import.rows", field=errors[0][0], errors=errors)
        made: list[Any] = []
        unit_codes: set[str] = set()
        for i, row in enumerate(units, start=1):
            try:
                if row["code"] in unit_codes or Unit.id_for(row["code"]) in self.store.repository:
                    msg = f"unit code {row['code']!r} is already registered"
                    raise Conflict(msg, rule="unit.code-unique", field="code")
                made.append(register_unit(check_code(row["code"]), check_name(row["name"]),
                                          UnitKind(row["kind"]), row["category"], principal.id))
                unit_codes.add(row["code"])
            except DomainError as exc:
                errors.append((f"units[{i}].{exc.field}", exc.rule, exc.detail))
            except (KeyError, ValueError) as exc:
                errors.append((f"units[{i}]", "row.format", f"bad row: {exc}"))
        cadre_codes: set[str] = set()
        for i, row in enumerate(cadres, start=1):
            try:
                code = check_code(row["code"])
                if code in cadre_codes or Cadre.id_for(code) in self.store.repository:
                    msg = f"cadre code {code!r} is already registered"
                    raise Conflict(msg, rule="cadre.code-unique", field="code")
                if row["unit_code"] not in unit_codes and (
                        Unit.id_for(row["unit_code"]) not in self.store.repository):
                    msg = f"unit {row['unit_code']!r} is neither registered nor in this import"
                    raise InvalidInput(msg, rule="cadre.unit-exists", field="unit_code")
                made.append(Cadre(code=code, name=check_name(row["name"]),
                                  unit_code=row["unit_code"],
                                  role=PostRole(row["role"]).value,
                                  since=_check_date(row["since"], "since"), actor=principal.id))
                cadre_codes.add(code)
            except DomainError as exc:
                errors.append((f"cadres[{i}].{exc.field}", exc.rule, exc.detail))
            except (KeyError, ValueError) as exc:
                errors.append((f"cadres[{i}]", "row.format", f"bad row: {exc}"))
        if errors:
            msg = f"{len(errors)} row(s) refused; nothing was imported"
            raise InvalidInput(msg, rule="import.rows", field=errors[0][0], errors=errors)
        if not made:
            msg = "the import is empty"
            raise InvalidInput(msg, rule="import.rows", field="units")
        return self._save_new(made, after_append, "unit or cadre")
