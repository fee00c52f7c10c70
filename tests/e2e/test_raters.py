"""领导把关考评 and the satisfaction gate over HTTP, on both stores: leaders' posts and charges
(organizer's write and read), 回避 refused with its rule, the seal refused below the scheme's
minimum of leader raters (nothing stored), the post-weighted review and an item excluded from
实绩 shown on the card."""

from __future__ import annotations

import copy
from typing import Any

from litestar.testing import TestClient

from service.runtime import Services
from tests.e2e.test_cycle_scenario import BASE, CADRES, SCHEME, UNITS, People, ok, refused
from tests.e2e.test_refusals_scheme import log_length

Client = TestClient[Any]

RATERS_SCHEME: dict[str, Any] = copy.deepcopy(SCHEME)
RATERS_SCHEME["leader_post_weights"] = {"书记": "3"}
RATERS_SCHEME["leader_raters_min"] = {"team": 2, "principal": 2}
# team:E1's pool weighs commitments too, so the per-item gate shows in its composite.
RATERS_SCHEME["pools"][0]["weights"] = {"leader-review": "0.4", "indicators": "0.3",
                                        "commitments": "0.3"}


def _posts(client: Client, services: Services, who: People) -> None:
    url = "/api/v1/leaders/L1/posts"
    body: dict[str, Any] = {
            "posts": [{"body": "party-committee", "title": "常委", "unit_code": "E1"}],
            "charges": [{"unit_code": "E2", "relation": "in-charge"},
                        {"unit_code": "E3", "relation": "liaison"}],
            "since": "2021-06-01", "reason": "市委任命"}
    refused(client.put(url, json=body, headers=who.org), 428, "if-match.required")
    twice = {**body, "posts": body["posts"] * 2}
    length = log_length(services)
    problem = refused(client.put(url, json=twice, headers={**who.org, "If-Match": '"1"'}), 422,
                      "leader.posts-distinct")
    assert problem["field"] == "posts"
    assert log_length(services) == length
    refused(client.put(url, json=body, headers={**who.l1, "If-Match": '"1"'}), 403,
            "role")
    ok(client.put(url, json=body, headers={**who.org, "If-Match": '"1"'}), 200)
    ok(client.put("/api/v1/leaders/L2/posts", json={
        "posts": [{"body": "party-committee", "title": "书记"}], "since": "2021-06-01",
        "reason": "市委任命"}, headers={**who.org, "If-Match": '"1"'}), 200)


def _cycle(client: Client, services: Services, who: People) -> None:
    ok(client.post("/api/v1/imports", json={"units": UNITS, "cadres": CADRES}, headers=who.org))
    for code in ("L1", "L2"):
        ok(client.post("/api/v1/leaders", json={"code": code, "name": code}, headers=who.org))
    _posts(client, services, who)
    ok(client.post("/api/v1/cycles", json={"year": 2025}, headers=who.org))
    etag = client.get(BASE).headers["etag"]
    ok(client.put(f"{BASE}/scheme", json=RATERS_SCHEME, headers={**who.org, "If-Match": etag}),
       200)
    services.follower.catch_up()
    ok(client.post(f"{BASE}/roster", json={}, headers=who.org))
    ok(client.post(f"{BASE}/freeze", json={}, headers=who.org))
    ok(client.post(f"{BASE}/scoring", json={}, headers=who.org))


def test_leader_posts_avoidance_minimum_and_the_item_gate(client: Client,
                                                          services: Services) -> None:
    who = People(services)
    _cycle(client, services, who)
    leader = ok(client.get("/api/v1/leaders/L1", headers=who.org), 200)
    assert leader["posts"] == [{"body": "party-committee", "title": "常委", "unit_code": "E1"}]
    assert leader["charges"] == [{"unit_code": "E2", "relation": "in-charge"},
                                 {"unit_code": "E3", "relation": "liaison"}]
    assert client.get("/api/v1/leaders/L1").status_code == 401
    refused(client.get("/api/v1/leaders/L1", headers=who.l1), 403, "role")

    def post(subject: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        return client.post(f"{BASE}/subjects/{subject}/{path}", json=body, headers=headers)

    # 回避: L1 holds a post in E1, so neither E1's team nor its principal.
    for subject in ("team:E1", "cadre:P1"):
        length = log_length(services)
        problem = refused(post(subject, "leader-reviews", {"score": 90}, who.l1), 403,
                          "rater.avoidance")
        assert "E1" in problem["detail"]
        assert log_length(services) == length

    for subject in ("team:E1", "team:E2", "team:E3", "team:F1", "cadre:P1", "cadre:P2",
                    "cadre:P3"):
        ok(post(subject, "leader-reviews", {"score": 70}, who.l2))
        if subject not in ("team:E1", "cadre:P1"):
            ok(post(subject, "leader-reviews", {"score": 90}, who.l1))
    ok(post("cadre:D1", "leader-reviews", {"score": "88"}, who.p1))
    for subject in ("team:E1", "team:E2", "team:E3"):
        ok(post(subject, "indicators", {"indicator": "growth", "value": "7%", "score": 90,
                                        "evidence": "统计公报"}, who.f1))
        ok(post(subject, "targets", {"targets": ["招商引资", "菜市场改造"]}, who.org))
        for target in ("招商引资", "菜市场改造"):
            ok(post(subject, "targets/assessments", {"target": target, "achieved": True,
                                                     "evidence": "台账"}, who.org))

    # The 群众认可 survey rates E2's 菜市场改造 at 0.52 < 0.6: it is not 实绩.
    refused(post("team:E2", "targets/satisfaction", {"session": "qzrk", "item": "不存在",
                                                     "satisfaction": "0.9"}, who.org),
            422, "satisfaction.item-published")
    refused(post("team:E2", "targets/satisfaction", {"session": "qzrk", "item": "菜市场改造",
                                                     "satisfaction": "0.52"}, who.l1),
            403, "role")
    ok(post("team:E2", "targets/satisfaction", {"session": "qzrk", "item": "菜市场改造",
                                                "satisfaction": "0.52"}, who.org))
    card = ok(client.get(f"{BASE}/subjects/team:E2/explain", headers=who.org), 200)
    result = card["result"]
    # Leader review (3·70 + 90) / 4 = 75 (书记 weighs 3); commitments (100 + 0) / 2 = 50;
    # composite 0.4·75 + 0.3·90 + 0.3·50 = 30 + 27 + 15 = 72.
    assert result["components"]["leader-review"] == "75.00"
    assert result["components"]["commitments"] == "50.00"
    assert result["composite"] == "72.00"
    assert result["satisfaction_gate"]["excluded_items"] == [
        {"item": "菜市场改造", "satisfaction": "0.52"}]
    assert result["gate_failed"] is False

    # E1's team and principal have one leader rater (L1 avoided them), the scheme wants 2.
    length = log_length(services)
    problem = refused(client.post(f"{BASE}/seal", json={}, headers=who.org), 409,
                      "seal.leader-raters-minimum")
    assert "1 of 2" in problem["detail"]
    assert log_length(services) == length
    assert ok(client.get(BASE), 200)["phase"] == "scoring"
