"""The use of results (考核结果运用): a decision resting on a published grade is recorded with
the results version and fingerprint it cited; a grade that does not support it is refused;
multi-year rules (连续两年最低等次, 连续三年最高等次) list the uses they make due."""

from __future__ import annotations

from typing import Any

from domain.errors import InvalidInput
from domain.uses import UseKind
from service.principals import IdentityKind, Role
from service.runtime import Services
from tests.conftest import bearer
from tests.e2e.test_corrections import published_cycle
from tests.e2e.test_cycle_scenario import BASE, Client, _results, _table, ok, refused
from tests.integration.kit import ORG, approve, cadre, register_city, sealed_cycle

USE = {"decided_on": "2026-04-01", "authority": "市委常委会", "document": "常委会纪要2026-9",
       "reason": "年度考核优秀，实绩突出"}


def _by_grade(table: dict[str, tuple[str, int, str | None, bool]], grade: str) -> list[str]:
    return sorted(s for s, (_, _, g, _) in table.items() if g == grade
                  and s.startswith("cadre:"))


def test_a_use_records_the_grade_and_version_it_rests_on(client: Client,
                                                         services: Services) -> None:
    who = published_cycle(client, services)
    body = _results(client, services, who.org)  # cadres' results: not public
    table = _table(body)
    best, = _by_grade(table, "优秀")
    lower = _by_grade(table, "基本称职") + _by_grade(table, "不称职")
    receipt = ok(client.post(f"{BASE}/subjects/{best}/uses", json={"kind": "promotion", **USE},
                             headers={**who.org, "Idempotency-Key": "use-1"}))
    again = client.post(f"{BASE}/subjects/{best}/uses", json={"kind": "promotion", **USE},
                        headers={**who.org, "Idempotency-Key": "use-1"})
    assert again.status_code == 201 and again.json() == receipt
    assert again.headers["Idempotent-Replayed"] == "true"
    supervisor = bearer(services, Role.SUPERVISOR, IdentityKind.STAFF, "sup")
    uses = ok(client.get(f"{BASE}/subjects/{best}/uses", headers=supervisor), 200)["uses"]
    assert len(uses) == 1  # the replay recorded nothing
    assert uses[0] == {
        "kind": "promotion", "grade": "优秀", "results_version": body["results_version"],
        "results_fingerprint": body["results_fingerprint"], "actor": uses[0]["actor"], **USE}
    # The grade does not support the use: refused, naming the rule and the grades it needs.
    if lower:
        problem = refused(client.post(f"{BASE}/subjects/{lower[0]}/uses",
                                      json={"kind": "promotion", **USE}, headers=who.org),
                          422, "use.grade-fits")
        assert problem["field"] == "kind" and "优秀" in problem["detail"]
    problem = refused(client.post(f"{BASE}/subjects/{best}/uses",
                                  json={"kind": "demotion", **USE}, headers=who.org),
                      422, "use.grade-fits")
    assert "基本称职 or 不称职" in problem["detail"]
    team = next(s for s in table if s.startswith("team:"))
    refused(client.post(f"{BASE}/subjects/{team}/uses",
                        json={"kind": "admonishment-talk", **USE}, headers=who.org),
            422, "use.cadre-only")
    # A reasoned act: blank authority refused; unknown kinds refused listing the allowed ones.
    blank = refused(client.post(f"{BASE}/subjects/{best}/uses",
                                json={"kind": "feedback", **USE, "authority": " "},
                                headers=who.org), 422, "use.reasoned")
    assert blank["field"] == "authority"
    unknown = client.post(f"{BASE}/subjects/{best}/uses", json={"kind": "exile", **USE},
                          headers=who.org)
    assert unknown.status_code == 400
    assert (unknown.json()["field"], unknown.json()["rule"]) == ("kind", "enum")
    assert unknown.json()["allowed"] == [k.value for k in UseKind]
    # Personnel actions are not public, and only the organizer records them.
    assert client.get(f"{BASE}/subjects/{best}/uses").status_code == 401
    refused(client.get(f"{BASE}/subjects/{best}/uses", headers=who.l1), 403, "role")
    refused(client.post(f"{BASE}/subjects/{best}/uses", json={"kind": "reward", **USE},
                        headers=who.committee), 403, "role")
    assert len(ok(client.get(f"{BASE}/subjects/{best}/uses", headers=who.org), 200)["uses"]) == 1


def test_a_use_needs_a_published_result(client: Client, services: Services) -> None:
    from tests.e2e.test_cycle_scenario import People, score_everything, setup_cycle  # noqa: PLC0415

    who = People(services)
    setup_cycle(client, services, who)
    score_everything(client, who)
    refused(client.post(f"{BASE}/subjects/cadre:P1/uses", json={"kind": "promotion", **USE},
                        headers=who.org), 409, "cycle.phase")


def _publish(services: Services, scores: list[int]) -> int:
    year = sealed_cycle(services, scores)
    approve(services, year)
    services.evaluation.publish(ORG, year, services.stream_heads,
                                notified_on=f"{year}-12-31")
    return year


def _due(services: Services, year: int) -> dict[tuple[str, str], Any]:
    return {(d.subject, d.rule): d for d in services.uses.due(ORG, year)}


def test_multi_year_rules_list_the_uses_they_make_due(services: Services) -> None:
    register_city(services)
    # Leader review is the only component: P1 优秀 every year, P5 不称职 every year.
    scores = [95, 85, 80, 65, 40]
    first = _publish(services, scores)
    assert _due(services, first) == {}  # one year proves no multi-year rule
    second = _publish(services, scores)
    due = _due(services, second)
    assert set(due) == {(cadre(5), "two-years-lowest")}
    lowest = due[cadre(5), "two-years-lowest"]
    assert lowest.years == [first, second] and lowest.grades == ["不称职", "不称职"]
    assert not lowest.answered and "removal" in lowest.answers
    third = _publish(services, scores)
    due = _due(services, third)
    assert set(due) == {(cadre(5), "two-years-lowest"), (cadre(1), "three-years-best")}
    # Teams are not subjects of these personnel rules even with the same grades.
    assert not any(subject.startswith("team:") for subject, _ in due)
    services.uses.record(ORG, third, cadre(1), kind="reward", decided_on=f"{third}-12-31",
                         authority="市委", document="市委〔2026〕1号", reason="连续三年优秀")
    services.uses.record(ORG, third, cadre(5), kind="feedback", decided_on=f"{third}-12-31",
                         authority="组织部", document="反馈记录", reason="个别反馈")
    due = _due(services, third)
    assert due[cadre(1), "three-years-best"].answered
    assert not due[cadre(5), "two-years-lowest"].answered  # feedback does not answer it
    # A year broken in the middle breaks the rule: P5 raised to 称职 in the fourth year.
    fourth = _publish(services, [95, 85, 80, 65, 75])
    assert (cadre(5), "two-years-lowest") not in _due(services, fourth)


def test_a_use_refused_by_the_domain_writes_nothing(services: Services) -> None:
    register_city(services)
    year = _publish(services, [95, 85, 80, 65, 40])
    with services.db.read() as cur:
        cur.execute("SELECT count(*) FROM kaoping_ledger")
        before = cur.fetchone()
    try:
        services.uses.record(ORG, year, cadre(5), kind="promotion", decided_on="2026-01-01",
                             authority="市委", document="x", reason="x")
    except InvalidInput as refusal:
        assert refusal.rule == "use.grade-fits"
    else:  # pragma: no cover
        raise AssertionError("a promotion on 不称职 was recorded")
    with services.db.read() as cur:
        cur.execute("SELECT count(*) FROM kaoping_ledger")
        assert cur.fetchone() == before
    assert services.uses.of(ORG, year, cadre(5)) == []
    try:  # the API's schema refuses unknown kinds first; the use case refuses them too
        services.uses.record(ORG, year, cadre(5), kind="exile", decided_on="2026-01-01",
                             authority="市委", document="x", reason="x")
    except InvalidInput as refusal:
        assert refusal.rule == "use.kind" and "promotion" in str(refusal)
    else:  # pragma: no cover
        raise AssertionError("an unknown kind was recorded")
