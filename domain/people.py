"""People of the method: cadres (领导干部) in their posts, and city leaders (市领导)."""

from __future__ import annotations

from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidInput


class PostRole(StrEnum):
    PRINCIPAL = "principal"  # 党政正职
    DEPUTY = "deputy"  # 副职


class Cadre(Aggregate):
    """领导干部: a person holding a post (principal or deputy) in a unit; the post can change."""

    TOPIC = "kaoping/Cadre"

    class Created(Aggregate.Created):
        TOPIC = "kaoping/Cadre.Created"  # base only; never stored

    class Registered(Created):
        TOPIC = "kaoping/Cadre.Registered.v1"
        code: str
        name: str
        unit_code: str
        role: str
        since: str  # ISO date the post was taken
        actor: str

    class PostChanged(Aggregate.Event):
        TOPIC = "kaoping/Cadre.PostChanged.v1"
        unit_code: str
        role: str
        since: str
        reason: str
        actor: str

    @staticmethod
    def id_for(code: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"kaoping:cadre:{code}")

    @classmethod
    def create_id(cls, code: str, **_: object) -> UUID:
        return cls.id_for(code)

    @event(Registered)
    def __init__(self, code: str, name: str, unit_code: str, role: str, since: str,
                 actor: str) -> None:
        self.code, self.name, self.unit_code = code, name, unit_code
        self.role = PostRole(role)
        self.since = since

    def change_post(self, unit_code: str, role: PostRole, since: str, reason: str,
                    actor: str) -> None:
        if (unit_code, role) == (self.unit_code, self.role):
            msg = f"cadre {self.code} already holds that post"
            raise InvalidInput(msg, rule="cadre.post-changes", field="unit_code")
        self._post_changed(unit_code=unit_code, role=role.value, since=since, reason=reason,
                           actor=actor)

    @event(PostChanged)
    def _post_changed(self, unit_code: str, role: str, since: str, reason: str,
                      actor: str) -> None:
        self.unit_code, self.role, self.since = unit_code, PostRole(role), since


class Leader(Aggregate):
    """市领导: a city leader who scores leadership teams and their principals."""

    TOPIC = "kaoping/Leader"

    class Created(Aggregate.Created):
        TOPIC = "kaoping/Leader.Created"  # base only; never stored

    class Registered(Created):
        TOPIC = "kaoping/Leader.Registered.v1"
        code: str
        name: str
        actor: str

    @staticmethod
    def id_for(code: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"kaoping:leader:{code}")

    @classmethod
    def create_id(cls, code: str, **_: object) -> UUID:
        return cls.id_for(code)

    @event(Registered)
    def __init__(self, code: str, name: str, actor: str) -> None:
        self.code, self.name = code, name
