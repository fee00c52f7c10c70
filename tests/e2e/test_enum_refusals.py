"""A refusal of an enumerated value lists the values the field takes (issue 16), in the body,
in a query parameter, inside a list and as a dict's key, so a client fixes a typo without
reading the OpenAPI document."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

import msgspec
from litestar.testing import TestClient

from api.strict import StrictDecoder
from domain.cases import Channel
from domain.units import UnitKind
from service.principals import IdentityKind, Role
from service.runtime import Services
from tests.conftest import bearer

Client = TestClient[Any]


def test_a_query_parameter_names_its_values(client: Client) -> None:
    response = client.get("/api/v1/units", params={"kind": "village"})
    assert response.status_code == 400
    problem = response.json()
    assert (problem["field"], problem["rule"]) == ("kind", "enum")
    assert problem["allowed"] == [k.value for k in UnitKind]
    assert problem["errors"][0]["allowed"] == problem["allowed"]


def test_a_body_field_names_its_values(client: Client, services: Services) -> None:
    intake = bearer(services, Role.INTAKE, IdentityKind.STAFF, "xf-enum")
    response = client.post("/api/v1/cases", json={
        "channel": "wechat", "year": 2025, "subjects": ["team:E1"], "summary": "反映问题"},
        headers=intake)
    assert response.status_code == 400
    problem = response.json()
    assert (problem["field"], problem["rule"]) == ("channel", "enum")
    assert problem["allowed"] == [c.value for c in Channel]
    assert "wechat" in problem["detail"]
    assert all(c.value in problem["detail"] for c in Channel)  # also said in words


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Inner(msgspec.Struct):
    colour: Colour


class Body(msgspec.Struct):
    items: list[Inner]
    weights: dict[Colour, int]
    size: Literal["s", "m"] | None = None


def test_nested_list_dict_key_and_literal_positions() -> None:
    decoder = StrictDecoder(Body)
    in_list = decoder.check(b'{"items": [{"colour": "red"}, {"colour": "green"}], "weights": {}}')
    assert in_list is not None
    assert (in_list.field, in_list.rule, in_list.allowed) == ("items[1].colour", "enum",
                                                               ["red", "blue"])
    as_key = decoder.check(b'{"items": [], "weights": {"green": 1}}')
    assert as_key is not None
    assert (as_key.field, as_key.rule, as_key.allowed) == ("weights", "enum", ["red", "blue"])
    literal = decoder.check(b'{"items": [], "weights": {}, "size": "xl"}')
    assert literal is not None
    assert (literal.field, literal.rule) == ("size", "enum")
    assert sorted(literal.allowed or []) == ["m", "s"]
    # Other refusals carry no list.
    wrong_type = decoder.check(b'{"items": [], "weights": {"red": "x"}}')
    assert wrong_type is not None
    assert wrong_type.allowed is None
