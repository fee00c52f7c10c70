"""Issue 14: the audit console's sign-in, CSRF and authorisation, through the real app.

The console reads through the API as the signed-in person, so each page must answer as that
person's own API call does: the sweep below opens every console page (api/console PAGES) as
every kind of reader of test_audiences' world, before and after publication, and compares the
page's status with the API's for the same read. Anonymous readers are sent to the sign-in page.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from api.console import PAGES, upstream
from api.console.session import COOKIE
from service.clock import FixedClock
from service.principals import IdentityKind, Role
from service.runtime import Services
from tests.conftest import bearer
from tests.e2e.test_audiences import World
from tests.e2e.test_cycle_scenario import BASE, People, ok, score_everything, setup_cycle

Client = TestClient[Any]
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def sign_in(client: Client, headers: dict[str, str], next_path: str = "/console") -> Any:
    client.cookies.clear()
    form = client.get("/console/sign-in")
    assert form.status_code == 200, form.text
    csrf = CSRF.search(form.text)
    assert csrf is not None
    return client.post("/console/sign-in", data={
        "csrf": csrf.group(1), "token": token_of(headers), "next": next_path},
        follow_redirects=False)


def page_csrf(client: Client, path: str = "/console") -> str:
    found = CSRF.search(client.get(path).text)
    assert found is not None
    return found.group(1)


def test_every_console_page_is_declared(client: Client) -> None:
    pages = {r.path_format for r in client.app.routes
             if isinstance(r, HTTPRoute) and "GET" in r.methods
             and r.path_format.startswith("/console")}
    assert pages == set(PAGES)


def test_anonymous_readers_are_sent_to_sign_in(client: Client) -> None:
    for template in PAGES:
        if PAGES[template][0] == "anyone":
            continue
        path = _url(template, "team:E1", "00000000-0000-4000-8000-000000000000")
        resp = client.get(path, follow_redirects=False)
        assert resp.status_code == 303, (path, resp.status_code)
        where = urlsplit(resp.headers["location"])
        assert where.path == "/console/sign-in", path
        assert where.query.startswith("next=/console"), path


def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_it(
        client: Client, services: Services) -> None:
    org = bearer(services, Role.ORGANIZER, IdentityKind.STAFF, "org-1")
    resp = sign_in(client, org, "/console/cycles/2025")
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == "/console/cycles/2025"
    cookie = next(c for c in resp.headers.get_list("set-cookie") if c.startswith(COOKIE + "="))
    attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
    assert {"httponly", "path", "samesite"} <= attrs
    assert "samesite=strict" in cookie.lower() and "path=/console" in cookie.lower()
    assert "secure" not in attrs  # plain http here: a Secure cookie would never come back
    assert token_of(org) not in cookie  # the token is not the session
    home = client.get("/console")
    assert home.status_code == 200 and "org-1" in home.text
    assert "unsafe-inline" not in home.headers["content-security-policy"]
    # Sign-out needs the page's CSRF token; a forged form is refused, naming the rule.
    forged = client.post("/console/sign-out", data={"csrf": "forged"}, follow_redirects=False)
    assert forged.status_code == 403 and forged.json()["rule"] == "console.csrf"
    kept = client.cookies[COOKIE]  # a copy of the cookie, as a thief would keep it
    out = client.post("/console/sign-out", data={"csrf": page_csrf(client)},
                      follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/console", follow_redirects=False).status_code == 303
    client.cookies.set(COOKIE, kept, path="/console")
    assert client.get("/console", follow_redirects=False).status_code == 303  # signed out
    # The sign-out record is append-only (migrations 0026), for the owner too.
    for statement in ("DELETE FROM kaoping_console_signouts",
                      "UPDATE kaoping_console_signouts SET expires = 0"):
        with pytest.raises((psycopg.Error, sqlite3.Error)), services.db.write() as cur:
            cur.execute(statement)


def test_a_bad_token_a_forged_form_and_an_expired_session(client: Client, services: Services,
                                                         clock: FixedClock) -> None:
    org = bearer(services, Role.ORGANIZER, IdentityKind.STAFF, "org-1")
    refused = sign_in(client, {"Authorization": "Bearer not-a-token"})
    assert refused.status_code == 401 and "令牌无效" in refused.text
    assert COOKIE not in client.cookies
    # The sign-in form's CSRF token is bound to its own pre-session cookie.
    client.cookies.clear()
    forged = client.post("/console/sign-in", data={"csrf": "x" * 43, "token": token_of(org)},
                         follow_redirects=False)
    assert forged.status_code == 403 and forged.json()["rule"] == "console.csrf"
    odd = client.post("/console/sign-in", data={"token": token_of(org), "admin": "1"},
                      follow_redirects=False)
    assert odd.status_code == 422 and odd.json()["rule"] == "console.form"
    # A tampered cookie is no session; nor is one past KAOPING_CONSOLE_SESSION_SECONDS.
    assert sign_in(client, org).status_code == 303
    value = client.cookies[COOKIE]
    client.cookies.set(COOKIE, value[:-2] + ("AA" if value[-2:] != "AA" else "BB"),
                       path="/console")
    assert client.get("/console", follow_redirects=False).status_code == 303
    assert sign_in(client, org).status_code == 303
    assert client.get("/console").status_code == 200
    clock.advance(timedelta(seconds=services.settings.console_session_seconds + 1))
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_a_cadre_cannot_open_another_s_card(client: Client, services: Services) -> None:
    who = People(services)
    setup_cycle(client, services, who)
    score_everything(client, who)
    services.follower.catch_up()
    sign_in(client, who.p3)
    other = client.get("/console/cycles/2025/subjects/cadre:P1")
    api = client.get("/api/v1/cycles/2025/subjects/cadre:P1/explain", headers=who.p3)
    assert other.status_code == api.status_code == 403
    assert api.json()["rule"] in other.text
    assert "cadre:P1" in other.text and "composite" not in other.text.lower().split("规则")[0]
    sign_in(client, who.org)
    card = client.get("/console/cycles/2025/subjects/team:E3")
    assert card.status_code == 200
    assert "86.10" in card.text  # the composite, with the approved +2 (test_explain)
    assert "年终公告 announcement" in card.text  # a named as-of point
    changes = client.get("/api/v1/cycles/2025/subjects/team:E3/history", headers=who.org).json()
    approval = next(c["position"] for c in changes
                    if c["changed"].get("composite") == ["84.10", "86.10"])
    before = client.get(f"/console/cycles/2025/subjects/team:E3?as_of={approval - 1}")
    assert f'class="as-of">{approval - 1}<' in before.text
    assert 'class="composite">84.10<' in before.text
    diff = client.get(f"/console/cycles/2025/subjects/team:E3?from={approval - 1}"
                      f"&to={approval}")
    assert "<td>composite</td><td>84.10</td><td>86.10</td>" in diff.text
    bad = client.get("/console/cycles/2025/subjects/team:E3?from=yesterday&to=1")
    assert bad.status_code == 200 and "比较被拒绝" in bad.text and "as-of.format" in bad.text
    assert "封存 seal" not in card.text  # not sealed yet
    ok(client.post(f"{BASE}/seal", json={}, headers=who.org))
    sealed = client.get("/console/cycles/2025/subjects/team:E3")
    assert "封存 seal" in sealed.text
    at_seal = client.get("/console/cycles/2025/subjects/team:E3?as_of=seal")
    assert at_seal.status_code == 200 and 'class="composite">86.10<' in at_seal.text
    replay = client.get("/console/cycles/2025/subjects/team:E3/replay")
    assert replay.status_code == 200 and replay.text.count('class="step"') >= 4


def _url(template: str, subject: str, case_id: str) -> str:
    values = {"year": "2025", "subject": subject, "group": "economic-management",
              "case_id": case_id}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


def _sweep(client: Client, world: World) -> list[str]:
    wrong = []
    for reader, headers in world.readers.items():
        if reader == "anonymous":
            continue
        sign_in(client, headers)
        for template, (_, api) in PAGES.items():
            if api is None:
                continue
            for subject in ("team:E1", "cadre:P1") if "{subject}" in template else ("",):
                api_url = _url(api, subject, world.cases["inv-1"])
                if api.endswith("/results"):
                    api_url += "?group=economic-management&kind=team"
                expected = client.get(api_url, headers=headers).status_code
                page = client.get(_url(template, subject, world.cases["inv-1"]),
                                  follow_redirects=False)
                if page.status_code != expected:
                    wrong.append(f"{template} {subject} as {reader}: page {page.status_code}, "
                                 f"API {expected}")
    return wrong


def test_every_page_answers_as_the_api_does_for_every_reader(client: Client,
                                                             services: Services) -> None:
    world = World(client, services)
    before = _sweep(client, world)
    world.publish(client, services)
    after = _sweep(client, world)
    assert not before, "before publication:\n" + "\n".join(before)
    assert not after, "after publication:\n" + "\n".join(after)


def test_the_dashboard_and_a_ranking_count_every_page_of_results(
        client: Client, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """A city has more subjects than one page of results holds: the console reads them all
    (a page-one view counted 1,000 of 1,096 and blamed the reader's rights)."""
    world = World(client, services)
    monkeypatch.setattr(upstream, "PAGE", 2)  # 8 subjects: four pages; 3 teams: two
    sign_in(client, world.who.org)
    board = client.get("/console/cycles/2025")
    assert board.status_code == 200
    assert "您可查看结果的" not in board.text  # all 8 counted
    group = client.get("/console/cycles/2025/groups/economic-management?kind=team")
    assert group.status_code == 200
    teams = {i["result"]["subject"] for i in ok(client.get(
        f"{BASE}/results?group=economic-management&kind=team&limit=1000",
        headers=world.who.org), 200)["items"]}
    assert len(teams) > 2 and all(t in group.text for t in teams)


def test_dashboard_group_and_case_desk(client: Client, services: Services) -> None:
    world = World(client, services)
    sign_in(client, world.who.org)
    board = client.get("/console/cycles/2025")
    assert board.status_code == 200
    assert 'aria-current="step"' in board.text and "评分" in board.text
    assert "2026-01-10" in board.text  # the announcement's end date
    assert "您可查看结果的" not in board.text  # the organizer's counts are the whole cycle's
    home = client.get("/console")  # today is 2026-03-01: 2025 has a cycle, 2026 none yet
    assert 'href="/console/cycles/2025"' in home.text
    assert 'href="/console/cycles/2026"' not in home.text
    group = client.get("/console/cycles/2025/groups/economic-management?kind=team")
    assert group.status_code == 200 and "名额使用" in group.text
    assert group.text.index("team:E2") < group.text.index("team:E3")  # ranked
    sign_in(client, world.readers["inv-in"])
    desk = client.get("/console/cases")
    assert desk.status_code == 200 and world.cases["inv-1"][:8] in desk.text
    assert world.cases["inv-2"][:8] not in desk.text  # only the investigator's own cases
    assert client.get("/console/cycles/2025/subjects/team:E1").status_code == 200
    assert client.get("/console/cycles/2025/subjects/team:E3").status_code == 403
    world.publish(client, services)  # the investigator reads its case's two subjects' results
    partial = client.get("/console/cycles/2025")
    assert partial.status_code == 200
    readable = {i["result"]["subject"] for i in ok(client.get(
        f"{BASE}/results?limit=1000", headers=world.readers["inv-in"]), 200)["items"]}
    assert 0 < len(readable) < 8
    assert f"仅统计您可查看结果的 {len(readable)} 个对象（本周期共 8 个）" in partial.text
    services.follower.catch_up()  # the access record is a read model of the log
    sign_in(client, world.readers["supervisor"])
    access = client.get("/console/access")
    assert access.status_code == 200
    assert "person:staff:inv-1" in access.text and "investigator.case-scope" in access.text


def test_the_evidence_bundle_downloads_and_verifies(client: Client, services: Services) -> None:
    world = World(client, services)
    world.publish(client, services)
    sign_in(client, world.readers["inv-in"])
    bundle = client.get("/console/cycles/2025/subjects/team:E1/evidence")
    assert bundle.status_code == 200
    assert bundle.headers["content-disposition"].startswith("attachment;")
    assert bundle.json()["format"]
    check = client.get("/console/cycles/2025/subjects/team:E1/evidence/check")
    assert check.status_code == 200 and 'data-verdict="verified"' in check.text
    sign_in(client, world.readers["inv-out"])  # team:E1 is not in inv-2's case
    refused = client.get("/console/cycles/2025/subjects/team:E1/evidence/check")
    assert refused.status_code == 403 and "investigator.case-scope" in refused.text


def test_console_pages_load_nothing_from_elsewhere(client: Client, services: Services) -> None:
    from tests.e2e.test_offline_pages import Links  # noqa: PLC0415

    world = World(client, services)
    sign_in(client, world.readers["supervisor"])
    for page in ("/console", "/console/cycles/2025", "/console/cycles/2025/subjects/team:E3",
                 "/console/cycles/2025/subjects/team:E3/replay", "/console/access"):
        resp = client.get(page)
        assert resp.status_code == 200, page
        csp = resp.headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "script-src 'self'" in csp, page
        links = Links()
        links.feed(resp.text)
        assert [u for u in links.urls if urlsplit(u).scheme or urlsplit(u).netloc] == [], page
        assert links.inline == [], page
        for url in links.urls:
            if url.startswith("/assets/"):
                assert client.get(url).status_code == 200, url
