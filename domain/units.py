"""Units (单位): townships and city departments, the bodies whose leadership teams are assessed."""

from __future__ import annotations

from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidInput


class UnitKind(StrEnum):
    TOWNSHIP = "township"  # 乡镇
    DEPARTMENT = "department"  # 市直部门


# The default categories from which comparison groups (比较组) are formed: townships in two
# "platforms" by economic level, departments in six categories (seed-method.txt, DESIGN §1).
CATEGORIES: dict[UnitKind, dict[str, str]] = {
    UnitKind.TOWNSHIP: {
        "platform-1": "乡镇第一平台",
        "platform-2": "乡镇第二平台",
    },
    UnitKind.DEPARTMENT: {
        "party-government": "党政综合",
        "economic-management": "经济管理",
        "social-development": "社会事业发展",
        "law-enforcement-supervision": "执法监督",
        "mass-organisations": "群团及事业",
        "vertical": "垂直部门",
    },
}


def check_category(kind: UnitKind, category: str) -> None:
    if category not in CATEGORIES[kind]:
        allowed = ", ".join(CATEGORIES[kind])
        msg = f"category {category!r} is not one of the {kind} categories: {allowed}"
        raise InvalidInput(msg, rule="unit.category", field="category")


class Unit(Aggregate):
    """单位: a township or a city department. Its id is derived from its code, so a code can be
    registered once only, under any concurrency (a second registration collides at version 1)."""

    TOPIC = "kaoping/Unit"

    class Created(Aggregate.Created):
        TOPIC = "kaoping/Unit.Created"  # base only: the library wants a topic on it; never stored

    class Registered(Created):
        TOPIC = "kaoping/Unit.Registered.v1"
        code: str
        name: str
        kind: str
        category: str
        actor: str

    class Renamed(Aggregate.Event):
        TOPIC = "kaoping/Unit.Renamed.v1"
        name: str
        reason: str
        actor: str

    @staticmethod
    def id_for(code: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"kaoping:unit:{code}")

    @classmethod
    def create_id(cls, code: str, **_: object) -> UUID:
        return cls.id_for(code)

    @event(Registered)
    def __init__(self, code: str, name: str, kind: str, category: str, actor: str) -> None:
        self.code = code
        self.name = name
        self.kind = UnitKind(kind)
        self.category = category

    def rename(self, name: str, reason: str, actor: str) -> None:
        if name == self.name:
            msg = f"the unit is already named {name!r}"
            raise InvalidInput(msg, rule="unit.rename-changes-name", field="name")
        self._renamed(name=name, reason=reason, actor=actor)

    @event(Renamed)
    def _renamed(self, name: str, reason: str, actor: str) -> None:
        self.name = name


def register_unit(code: str, name: str, kind: UnitKind, category: str, actor: str) -> Unit:
    check_category(kind, category)
    return Unit(code=code, name=name, kind=kind.value, category=category, actor=actor)
