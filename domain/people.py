"""People of the method: cadres (领导干部) in their posts, and city leaders (市领导)."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec
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


class LeaderBody(StrEnum):
    """四大班子 (and the 纪委): the body a city leader's post is in."""

    PARTY_COMMITTEE = "party-committee"  # 市委
    CONGRESS = "congress"  # 市人大常委会
    GOVERNMENT = "government"  # 市政府
    CPPCC = "cppcc"  # 市政协
    DISCIPLINE = "discipline"  # 市纪委监委


class LeaderPost(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One post of a city leader: the body, the post's title (书记, 副书记, 常委, 市长, 副市长,
    主任, 副主任, 主席, 副主席 …; the scheme weights raters by it), and the unit the post heads
    or belongs to when it has one (常委兼组织部长 → the 组织部): 回避 keeps the leader from
    scoring that unit's team and cadres."""

    body: LeaderBody
    title: str
    unit_code: str | None = None


class Charge(StrEnum):
    IN_CHARGE = "in-charge"  # 分管
    LIAISON = "liaison"  # 联系


class LeaderCharge(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    unit_code: str
    relation: Charge


def post_weight(weights: dict[str, Decimal], posts: list[LeaderPost]) -> tuple[str | None,
                                                                                 Decimal]:
    """The post a leader scores in and its weight: of the posts held, the one the scheme
    weighs most (the first such on a tie); a title the scheme does not list weighs 1."""
    best: tuple[str | None, Decimal] = (None, Decimal(1))
    for i, post in enumerate(posts):
        weight = weights.get(post.title, Decimal(1))
        if i == 0 or weight > best[1]:
            best = (post.title, weight)
    return best


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

    class PostsSet(Aggregate.Event):
        """The leader's posts and 分管/联系 units from a date, replacing the previous set (a
        new fact each time; earlier sets stay in the stream)."""

        TOPIC = "kaoping/Leader.PostsSet.v1"
        posts: list[LeaderPost]
        charges: list[LeaderCharge]
        since: str
        reason: str
        actor: str

    @event(Registered)
    def __init__(self, code: str, name: str, actor: str) -> None:
        self.code, self.name = code, name
        self.posts: list[LeaderPost] = []
        self.charges: list[LeaderCharge] = []
        self.since: str | None = None

    def set_posts(self, posts: list[LeaderPost], charges: list[LeaderCharge], since: str,
                  reason: str, actor: str) -> None:
        seen = [(p.body, p.title, p.unit_code) for p in posts]
        if len(seen) != len(set(seen)):
            msg = "a post is listed twice"
            raise InvalidInput(msg, rule="leader.posts-distinct", field="posts")
        units = [c.unit_code for c in charges]
        if len(units) != len(set(units)):
            msg = "a unit is listed twice among the charges (分管 or 联系, not both)"
            raise InvalidInput(msg, rule="leader.charges-distinct", field="charges")
        if (posts, charges) == (self.posts, self.charges):
            msg = f"leader {self.code} already holds exactly these posts and charges"
            raise InvalidInput(msg, rule="leader.posts-change", field="posts")
        self._posts_set(posts=posts, charges=charges, since=since, reason=reason, actor=actor)

    @event(PostsSet)
    def _posts_set(self, posts: list[LeaderPost], charges: list[LeaderCharge], since: str,
                   reason: str, actor: str) -> None:
        self.posts, self.charges, self.since = list(posts), list(charges), since

    def own_units(self) -> set[str]:
        """Units a post of the leader heads or belongs to (回避)."""
        return {p.unit_code for p in self.posts if p.unit_code is not None}
