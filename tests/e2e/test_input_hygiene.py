"""Issue 12: only text and plainly written numbers get into the append-only log, and a read model
that stops on an event it cannot apply is reported by /ready and by ``rebuild --check``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from litestar.testing import TestClient

from domain.units import Unit, UnitKind
from projections.follower import Follower, LoggedEvent
from service.db import Cursor
from service.principals import Principal, Role
from service.rebuild import check
from service.runtime import Services
from tests.e2e.test_cycle_scenario import BASE, People, ok
from tests.e2e.test_refusals_scheme import log_length, refused_with

Client = TestClient[Any]
JSON = {"content-type": "application/json"}
UNIT = {"code": "XZ-01", "kind": "township", "category": "platform-1"}


def _raw(client: Client, url: str, body: str, headers: dict[str, str]) -> Any:
    """Post ``body`` exactly as written (escapes, duplicate keys and all)."""
    return client.post(url, content=body.encode(), headers={**headers, **JSON})


@pytest.mark.parametrize(("escaped", "char"), [
    ("\\u0000", "U+0000"), ("\\u0007", "U+0007"), ("\\n", "U+000A"), ("\\u001f", "U+001F"),
    ("\\u007f", "U+007F"), ("\\u0085", "U+0085"), ("\\ufffe", "U+FFFE"), ("\\uffff", "U+FFFF"),
    ("\\ud800", "U+D800"), ("\\udfff", "U+DFFF")])
def test_a_name_that_is_not_text_is_refused_and_nothing_is_written(
        client: Client, services: Services, escaped: str, char: str) -> None:
    who = People(services)
    before = log_length(services)
    unit = (f'{{"code": "XZ-01", "name": "城{escaped}关", "kind": "township", '
            '"category": "platform-1"}')
    problem = refused_with(_raw(client, "/api/v1/units", unit, who.org), 400, "validation",
                           "text.characters", "name")
    assert char in problem["detail"]
    cadre = (f'{{"code": "C-1", "name": "张{escaped}三", "unit_code": "E1", "role": "principal", '
             '"since": "2024-01-01"}')
    refused_with(_raw(client, "/api/v1/cadres", cadre, who.org), 400, "validation",
                 "text.characters", "name")
    assert log_length(services) == before


def test_text_in_a_nested_list_or_a_key_is_named_by_its_path(client: Client,
                                                              services: Services) -> None:
    who = People(services)
    row = {"code": "P9", "name": "x", "unit_code": "E1", "role": "deputy", "since": "2024-01-01"}
    body = json.dumps({"cadres": [row, {**row, "code": "P8", "name": "y\x00"}]})
    refused_with(_raw(client, "/api/v1/imports", body, who.org), 400, "validation",
                 "text.characters", "cadres[1].name")
    ballot = '{"credential": "abcdefghijklmnop", "answers": {"team:E1": {"q\\u0000": "a"}}}'
    refused_with(_raw(client, "/api/v1/sessions/s-1/ballots", ballot, {}), 400, "validation",
                 "text.characters", "answers.team:E1")


@pytest.mark.parametrize("name", ["城关镇", "😀 文明单位 🏅", "ＡＢＣ全角（一）", "Ünïcödé · 第1组",
                                  "\u200d\u3000中"])
def test_ordinary_text_is_accepted_and_read_back_unchanged(client: Client, services: Services,
                                                           name: str) -> None:
    who = People(services)
    unit = ok(client.post("/api/v1/units", json={**UNIT, "name": name}, headers=who.org))["unit"]
    assert unit["name"] == name
    services.follower.catch_up()
    listed = ok(client.get("/api/v1/units", headers=who.org), 200)["items"]
    assert [u["name"] for u in listed] == [name]


SCORE = f"{BASE}/subjects/team:E1/leader-reviews"


@pytest.mark.parametrize("score", ['"8_0"', '"８０"', '" 80 "', '"80 "', "1e-400", '"1e-400"',
                                   "8e1", '"+80"', '"080"', '"80."', '".5"', '"NaN"',
                                   '"Infinity"', '"-0x50"', "80.0000001", '"1' + "0" * 40 + '"'])
def test_a_score_not_written_as_a_plain_decimal_is_refused(client: Client, services: Services,
                                                           score: str) -> None:
    who = People(services)
    before = log_length(services)
    problem = refused_with(_raw(client, SCORE, f'{{"score": {score}}}', who.l1), 400,
                           "validation", "decimal.plain", "score")
    assert problem["errors"][0]["field"] == "score"
    assert log_length(services) == before


def test_an_absurd_delta_is_a_problem_not_a_crash(client: Client, services: Services) -> None:
    who = People(services)
    body = {"adjustment": "a1", "delta": "1e999999999", "component": "analysis",
            "reason": "r", "basis": "b", "evidence": "e"}
    for delta in ("1e999999999", "-1E+999999999", "9" * 5000):
        refused_with(client.post(f"{BASE}/subjects/team:E1/adjustments",
                                 json={**body, "delta": delta}, headers=who.org),
                     400, "validation", "decimal.plain", "delta")
    raw = json.dumps(body).replace('"1e999999999"', "1e999999999")
    refused_with(_raw(client, f"{BASE}/subjects/team:E1/adjustments", raw, who.org), 400,
                 "validation", "decimal.plain", "delta")


@pytest.mark.parametrize(("body", "field"), [
    ('{"score": 60, "score": 90}', "score"),
    ('{"score": 90, "comment": "a", "comment": "b"}', "comment"),
])
def test_duplicate_keys_are_refused(client: Client, services: Services, body: str,
                                    field: str) -> None:
    who = People(services)
    refused_with(_raw(client, SCORE, body, who.l1), 400, "validation", "json.duplicate-key",
                 field)
    nested = '{"units": [{"code": "A1", "code": "A2", "name": "n", "kind": "township", ' \
             '"category": "platform-1"}]}'
    refused_with(_raw(client, "/api/v1/imports", nested, who.org), 400, "validation",
                 "json.duplicate-key", "units[0].code")


def test_plain_decimals_are_accepted_as_numbers_and_strings(client: Client,
                                                            services: Services) -> None:
    from tests.e2e.test_cycle_scenario import setup_cycle  # noqa: PLC0415 -- a heavy set-up

    who = People(services)
    setup_cycle(client, services, who)
    first = ok(_raw(client, SCORE, '{"score": 88.5}', who.l1))
    ok(_raw(client, f"{BASE}/subjects/team:E2/leader-reviews", '{"score": "90"}', who.l1))
    refused_with(_raw(client, f"{BASE}/subjects/team:E3/leader-reviews", '{"score": "88.123"}',
                      who.l1), 422, "invalid-input", "score.precision", "score")
    assert first["version"] >= 1


# --- a read model that stops says so ---------------------------------------------------------

class Choosy:
    """A read model that cannot apply a unit named ``refuse`` (as PostgreSQL's text cannot hold
    a NUL): a real projection, driven by the real follower, on both stores."""

    name = "choosy.v1"
    tables: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.refuse = "坏"

    def apply(self, cur: Cursor, events: Sequence[LoggedEvent]) -> None:
        for e in events:
            if e.topic == Unit.Registered.TOPIC and e.event.name == self.refuse:
                msg = f"cannot hold the unit name {self.refuse!r}"
                raise ValueError(msg)


ORGANIZER = Principal(id="staff:org-1", name="org", role=Role.ORGANIZER, via="test")


def _with(services: Services, projection: Any) -> None:
    services.follower.close()
    services.projections.append(projection)
    services.follower = Follower(services.db, services.store.mapper, services.projections,
                                 read_ahead=False)


def test_a_stopped_read_model_makes_ready_fail_and_rebuild_check_report_it(
        client: Client, services: Services) -> None:
    choosy = Choosy()
    _with(services, choosy)
    services.units.register(ORGANIZER, code="G1", name="好", kind=UnitKind.TOWNSHIP,
                            category="platform-1")
    services.units.register(ORGANIZER, code="B1", name="坏", kind=UnitKind.TOWNSHIP,
                            category="platform-1")
    with pytest.raises(ValueError, match="cannot hold"):
        services.follower.catch_up()
    ready = client.get("/ready")
    assert ready.status_code == 503
    (problem,) = ready.json()["problems"]
    assert "choosy.v1" in problem
    assert "cannot hold the unit name" in problem
    assert ready.json()["ready"] is False
    report = check(services)
    assert not report.ok
    assert set(report.stopped) == {"choosy.v1"}
    assert "cannot hold" in report.stopped["choosy.v1"]
    units = {t.table: t for t in report.tables}["rm_units"]  # the others were rebuilt
    assert units.live_rows == units.rebuilt_rows == 2
    choosy.refuse = "none"  # the read model is fixed (a new release): it moves on, and says so
    services.follower = Follower(services.db, services.store.mapper, services.projections,
                                 read_ahead=False)
    services.follower.catch_up()
    assert client.get("/ready").status_code == 200
    assert check(services).ok


def test_a_nul_stored_before_this_release_stops_units_on_postgres(
        pg_services: Services, pg_settings: Any) -> None:
    """The incident: a NUL reached the log, and rm_units (PostgreSQL text) could not hold it."""
    from api import create_app  # noqa: PLC0415

    pg_services.units.register(ORGANIZER, code="N1", name="a\x00b",
                               kind=UnitKind.TOWNSHIP, category="platform-1")
    # psycopg refuses a NUL in a text parameter; PostgreSQL's COPY (the read models' bulk
    # path) refuses it as the byte 0x00: either way the model stops, naming the byte.
    with pytest.raises(Exception, match=r"NUL|0x00"):
        pg_services.follower.catch_up()
    with TestClient(app=create_app(pg_settings, services=pg_services)) as client:
        ready = client.get("/ready")
    assert ready.status_code == 503
    assert any("units.v1" in p and ("NUL" in p or "0x00" in p)
               for p in ready.json()["problems"])
    report = check(pg_services)
    assert not report.ok
    assert "units.v1" in report.stopped
    assert "cadres.v1" not in report.stopped


def test_the_check_report_of_a_stopped_model_is_served(client: Client,
                                                       services: Services) -> None:
    choosy = Choosy()
    _with(services, choosy)
    services.units.register(ORGANIZER, code="B1", name="坏", kind=UnitKind.TOWNSHIP,
                            category="platform-1")
    with pytest.raises(ValueError, match="cannot hold"):
        services.follower.catch_up()
    check(services)
    from tests.conftest import bearer  # noqa: PLC0415

    supervisor = bearer(services, Role.SUPERVISOR)
    served = ok(client.get("/api/v1/operations/rebuild-check", headers=supervisor), 200)
    assert served["report"]["ok"] is False
    assert list(served["report"]["stopped"]) == ["choosy.v1"]


def test_a_csv_import_refuses_what_is_not_text(settings: Any, services: Services,
                                               tmp_path: Any) -> None:
    from tests.e2e.test_cli import _kaoping  # noqa: PLC0415

    units = tmp_path / "units.csv"
    units.write_text("code,name,kind,category\nXZ-01,城关镇,township,platform-1\n"
                     "XZ-02,城\x07南,township,platform-1\n", encoding="utf-8")
    before = log_length(services)
    out = _kaoping(settings, "import", "--units", str(units))
    assert out.returncode == 1, out.stderr
    assert "units[2].name" in out.stderr
    assert "[text.characters]" in out.stderr
    assert "U+0007" in out.stderr
    assert log_length(services) == before


@pytest.mark.parametrize("code", ["t02", "Xz-01", "ＸＺ-９９", "XZ\u200b99", "-XZ", "X" * 10_000,
                                  "XZ 99"])
def test_a_code_is_capital_letters_digits_and_hyphens_said_in_words(
        client: Client, services: Services, code: str) -> None:
    """A code is a stream's identity: "t02" beside "T02" would be another unit posing as the
    first. The refusal names the rule and says the form in words, not as a regex; an import
    is checked by the same rule (no request schema there)."""
    who = People(services)
    ok(client.post("/api/v1/units", json={**UNIT, "code": "T02", "name": "东城街道"},
                   headers=who.org))
    before = log_length(services)
    problem = refused_with(client.post("/api/v1/units", json={
        **UNIT, "code": code, "name": "东城街道"}, headers=who.org), 400, "validation",
        "code.format", "code")
    assert "capital letters A-Z" in problem["detail"] and "regex" not in problem["detail"]
    refused_with(client.post("/api/v1/cadres", json={
        "code": code, "name": "张三", "unit_code": "T02", "role": "principal",
        "since": "2024-01-01"}, headers=who.org), 400, "validation", "code.format", "code")
    refused_with(client.post("/api/v1/leaders", json={"code": code, "name": "李四"},
                             headers=who.org), 400, "validation", "code.format", "code")
    imported = refused_with(client.post("/api/v1/imports", json={
        "units": [{**UNIT, "code": "T03", "name": "西城街道"},  # a cell holds 500 at most
                  {**UNIT, "code": code[:40], "name": "南城街道"}]},
        headers=who.org), 422, "invalid-input", "import.rows", "units[2].code")
    assert [e["rule"] for e in imported["errors"]] == ["code.format"], imported
    assert log_length(services) == before
    assert client.get("/api/v1/units/t02").status_code == 404


@pytest.mark.parametrize("name", ["东城\u200b街道", "\ufeff东城街道", "东\u00ad城街道",
                                  "东城\u2060街道", "   ", "\u3000"])
def test_a_name_no_one_could_tell_from_another_is_refused(
        client: Client, services: Services, name: str) -> None:
    who = People(services)
    before = log_length(services)
    problem = refused_with(client.post("/api/v1/units", json={**UNIT, "name": name},
                                       headers=who.org), 400, "validation", "name.visible",
                           "name")
    assert "visible character" in problem["detail"]
    imported = refused_with(client.post("/api/v1/imports", json={
        "units": [{**UNIT, "name": name}]}, headers=who.org), 422, "invalid-input",
        "import.rows", "units[1].name")
    assert [e["rule"] for e in imported["errors"]] == ["name.visible"], imported
    assert log_length(services) == before


@pytest.mark.parametrize(("escaped", "char"), [("\\u2028", "U+2028"), ("\\u2029", "U+2029")])
def test_a_line_or_paragraph_separator_is_a_line_break_and_refused(
        client: Client, services: Services, escaped: str, char: str) -> None:
    who = People(services)
    for body in (f'{{"code": "XZ-01", "name": "城{escaped}关", "kind": "township", '
                 '"category": "platform-1"}',
                 '{"code": "XZ-01", "name": "城\u2028关", "kind": "township", '
                 '"category": "platform-1"}'.replace("\u2028", chr(int(char[2:], 16)))):
        problem = refused_with(_raw(client, "/api/v1/units", body, who.org), 400,
                               "validation", "text.characters", "name")
        assert char in problem["detail"]


def test_a_unit_registered_before_the_code_rule_is_still_referred_to(
        client: Client, services: Services) -> None:
    """Codes stored before ``code.format`` (a lower-case one) stay usable as references: a
    cadre is registered into that unit, and its optional post's unit is named by it."""
    who = People(services)
    services.store.save(Unit(code="e9", name="旧单位", kind=UnitKind.DEPARTMENT.value,
                             category="economic-management", actor="legacy"))
    ok(client.post("/api/v1/cadres", json={"code": "Q9", "name": "王五", "unit_code": "e9",
                                           "role": "deputy", "since": "2024-01-01"},
                   headers=who.org))
    ok(client.post("/api/v1/leaders", json={"code": "L9", "name": "市领导"}, headers=who.org))
    posts = {"posts": [{"body": "government", "title": "副市长", "unit_code": "e9"}],
             "since": "2024-01-01", "reason": "任命"}
    ok(client.put("/api/v1/leaders/L9/posts", json=posts,
                  headers={**who.org, "If-Match": '"1"'}), 200)


def test_an_imported_name_is_held_to_the_same_length_as_a_registered_one(
        client: Client, services: Services) -> None:
    who = People(services)
    before = log_length(services)
    long = "城" * 101
    refused_with(client.post("/api/v1/units", json={**UNIT, "name": long}, headers=who.org),
                 400, "validation", "constraint", "name")
    imported = refused_with(client.post("/api/v1/imports", json={
        "units": [{**UNIT, "name": long}]}, headers=who.org), 422, "invalid-input",
        "import.rows", "units[1].name")
    assert [e["rule"] for e in imported["errors"]] == ["name.length"], imported
    assert log_length(services) == before
    ok(client.post("/api/v1/imports", json={"units": [{**UNIT, "name": "城" * 100}]},
                   headers=who.org))
