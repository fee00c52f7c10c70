"""Issue 7: every way a scheme is refused, each over HTTP with its rule and field, and with
nothing written (the cycle keeps its version and the log its length)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import TestClient

from service.runtime import Services
from tests.e2e.test_cycle_scenario import BASE, CADRES, SCHEME, UNITS, People, Y, frozen_cycle, ok

Client = TestClient[Any]
Mutation = Callable[[dict[str, Any]], None]
PROBLEM = "https://kaoping.example/problems/"


def log_length(services: Services) -> int:
    with services.db.read() as cur:
        cur.execute("SELECT count(*) FROM kaoping_ledger")
        row = cur.fetchone()
    assert row is not None
    return int(row[0])


def refused_with(resp: Any, status: int, kind: str, rule: str,
                 field: str | None = None) -> dict[str, Any]:
    """The response is a problem document of ``kind`` naming ``rule`` (and ``field``)."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["type"] == PROBLEM + kind, body
    assert body["rule"] == rule, body
    if field is not None:
        assert body["field"] == field, body
    return body


def _pool(i: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def get(s: dict[str, Any]) -> dict[str, Any]:
        pool: dict[str, Any] = s["pools"][i]
        return pool
    return get


def dup_pool(s: dict[str, Any]) -> None:
    s["pools"].append(copy.deepcopy(s["pools"][1]))


def weight_above_one(s: dict[str, Any]) -> None:
    s["pools"][1]["weights"] = {"leader-review": "1.5"}


def bands_rising(s: dict[str, Any]) -> None:
    bands = _pool(1)(s)["bands"]
    bands[0]["min_score"], bands[1]["min_score"] = bands[1]["min_score"], bands[0]["min_score"]


def bands_equal(s: dict[str, Any]) -> None:
    _pool(1)(s)["bands"][1]["min_score"] = "90"


def no_bands(s: dict[str, Any]) -> None:
    _pool(1)(s)["bands"] = []


def band_above_100(s: dict[str, Any]) -> None:
    _pool(1)(s)["bands"][0]["min_score"] = "101"


def lowest_band_not_zero(s: dict[str, Any]) -> None:
    _pool(1)(s)["bands"][-1]["min_score"] = "10"


def quota_of_unknown_grade(s: dict[str, Any]) -> None:
    _pool(0)(s)["quotas"] = [{"grade": "优秀", "share": "0.2"}]  # a cadre grade, not a team's


def quota_share_above_one(s: dict[str, Any]) -> None:
    _pool(0)(s)["quotas"] = [{"grade": "好", "share": "1.2"}]


def threshold_above_one(s: dict[str, Any]) -> None:
    s["satisfaction_threshold"] = "1.01"


def indicator_weight_negative(s: dict[str, Any]) -> None:
    s["indicators"][0]["weight"] = "-0.1"


def indicator_twice(s: dict[str, Any]) -> None:
    s["indicators"].append({**s["indicators"][0], "name": "again"})


def cap_at_unknown_grade(s: dict[str, Any]) -> None:
    s["vetoes"][0]["cap_at"] = "A+"


def cap_without_cap_at(s: dict[str, Any]) -> None:
    del s["vetoes"][0]["cap_at"]


def no_grade_without_reason(s: dict[str, Any]) -> None:
    del s["vetoes"][1]["reason_code"]


def other_year(s: dict[str, Any]) -> None:
    s["cycle"] = Y - 1


INVALID: list[tuple[Mutation, str, str]] = [
    (dup_pool, "scheme.pool-unique", "pools[4]"),
    (weight_above_one, "share.range", "pools[1].weights.leader-review"),
    (bands_rising, "scheme.bands-ordered", "pools[1].bands"),
    (bands_equal, "scheme.bands-ordered", "pools[1].bands"),
    (no_bands, "scheme.bands-ordered", "pools[1].bands"),
    (band_above_100, "score.range", "pools[1].bands[0].min_score"),
    (lowest_band_not_zero, "scheme.bands-cover", "pools[1].bands"),
    (quota_of_unknown_grade, "scheme.quota-grade", "pools[0].quotas"),
    (quota_share_above_one, "share.range", "pools[0].quotas[0].share"),
    (threshold_above_one, "share.range", "satisfaction_threshold"),
    (indicator_weight_negative, "share.range", "indicators[0].weight"),
    (indicator_twice, "scheme.indicator-unique", "indicators"),
    (cap_at_unknown_grade, "scheme.veto-cap", "vetoes"),
    (cap_without_cap_at, "scheme.veto-cap", "vetoes"),
    (no_grade_without_reason, "scheme.veto-reason", "vetoes"),
    (other_year, "scheme.cycle", "cycle"),
]


@pytest.mark.parametrize(("mutate", "rule", "field"), INVALID,
                         ids=[m.__name__ for m, _, _ in INVALID])
def test_an_invalid_scheme_is_refused_and_not_stored(
        client: Client, services: Services, mutate: Mutation, rule: str, field: str) -> None:
    who = People(services)
    ok(client.post("/api/v1/cycles", json={"year": Y}, headers=who.org))
    etag = client.get(BASE).headers["etag"]
    before = log_length(services)
    scheme = copy.deepcopy(SCHEME)
    mutate(scheme)
    resp = client.put(f"{BASE}/scheme", json=scheme, headers={**who.org, "If-Match": etag})
    refused_with(resp, 422, "invalid-input", rule, field)
    assert log_length(services) == before
    assert client.get(BASE).headers["etag"] == etag
    assert services.evaluation.cycle(Y).scheme is None
    # The unmutated scheme is accepted with the same If-Match: the refusal changed nothing.
    ok(client.put(f"{BASE}/scheme", json=SCHEME, headers={**who.org, "If-Match": etag}), 200)


@pytest.mark.parametrize(("mutate", "rule", "field"),
                         [(other_year, "scheme.cycle", "cycle"),
                          (lowest_band_not_zero, "scheme.bands-cover", "pools[1].bands")],
                         ids=["other_year", "lowest_band_not_zero"])
def test_an_invalid_amendment_is_refused_and_not_stored(
        client: Client, services: Services, mutate: Mutation, rule: str, field: str) -> None:
    who = People(services)
    frozen_cycle(client, services, who, leaders=False)
    fingerprint = services.evaluation.cycle(Y).scheme_fingerprint
    before = log_length(services)
    scheme = copy.deepcopy(SCHEME)
    mutate(scheme)
    resp = client.post(f"{BASE}/amendments", headers=who.org, json={
        "scheme": scheme, "reason": "r", "authority": "a"})
    refused_with(resp, 422, "invalid-input", rule, field)
    assert log_length(services) == before
    assert services.evaluation.cycle(Y).scheme_fingerprint == fingerprint


def test_a_roster_subject_without_a_pool_rule_blocks_the_freeze(
        client: Client, services: Services) -> None:
    """F1 is party-government; a scheme without that group's pool cannot be frozen."""
    who = People(services)
    ok(client.post("/api/v1/imports", json={"units": UNITS, "cadres": CADRES}, headers=who.org))
    ok(client.post("/api/v1/cycles", json={"year": Y}, headers=who.org))
    scheme = copy.deepcopy(SCHEME)
    scheme["pools"] = [p for p in scheme["pools"] if p["group"] != "party-government"]
    etag = client.get(BASE).headers["etag"]
    ok(client.put(f"{BASE}/scheme", json=scheme, headers={**who.org, "If-Match": etag}), 200)
    services.follower.catch_up()
    ok(client.post(f"{BASE}/roster", json={}, headers=who.org))
    before = log_length(services)
    refused_with(client.post(f"{BASE}/freeze", json={}, headers=who.org), 422,
                 "invalid-input", "scheme.pool-rule", "group")
    assert log_length(services) == before
    assert ok(client.get(BASE), 200)["phase"] == "setup"
