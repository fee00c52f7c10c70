"""The credential sheet (测评凭条) and the ballot page's words, through the HTTP app on both stores.

The sheet: a title naming the cycle, the session and the units; instructions in Chinese; one QR
code per credential that opens exactly its vote URL under the configured public base URL (or
the request's own); and nothing on a slip but its credential. The page: subjects by name, the
session's rules in words, no form unless the session is open.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
import segno
from litestar.testing import TestClient

from api import create_app
from service.credential_sheet import QR_ERROR, QR_SCALE, vote_url
from service.runtime import Services
from service.settings import Settings, SettingsError, load_settings
from tests.e2e.test_cycle_scenario import People, frozen_cycle, ok

Client = TestClient[Any]
S = "mzcp-2025-fgj"
SUBJECTS = ["team:E1", "cadre:P1", "cadre:D1"]
DEFINITION: dict[str, Any] = {
    "code": S, "year": 2025, "kind": "democratic", "title": "2025年度发改局民主测评",
    "subjects": SUBJECTS,
    "items": [{"code": "de", "label": "德"}, {"code": "ji", "label": "绩"}],
    "options": [{"code": "excellent", "label": "优秀", "value": "100"},
                {"code": "good", "label": "称职", "value": "80"},
                {"code": "poor", "label": "不称职", "value": "0"},
                {"code": "unknown", "label": "不了解", "value": "0", "counted": False}],
    "classes": [{"code": "cadres", "label": "干部职工", "weight": "1", "eligible": 20}],
    "rules": {"min_valid": 3, "top_option": "excellent", "max_top_share": "0.3"},
}
PUBLIC = "https://kaoping.example.gov.cn/city"


class Tags(HTMLParser):
    """Start tags with their attributes, and the text of the document."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


def _session(client: Client, services: Services) -> People:
    who = People(services)
    frozen_cycle(client, services, who)
    ok(client.post("/api/v1/sessions", json=DEFINITION, headers=who.org))
    ok(client.post(f"/api/v1/sessions/{S}/freeze", json={}, headers=who.org))
    return who


def _issue(client: Client, who: People, count: int) -> dict[str, Any]:
    return ok(client.post(f"/api/v1/sessions/{S}/credentials",
                          json={"rater_class": "cadres", "count": count}, headers=who.org))


def _qr_paths(html: str) -> list[str]:
    return re.findall(r'<path[^>]* d="([^"]+)"', html)


def _expected_path(url: str) -> str:
    svg = segno.make(url, error=QR_ERROR).svg_inline(scale=QR_SCALE, border=2)
    found = re.search(r' d="([^"]+)"', svg)
    assert found
    return found.group(1)


def test_the_sheet_has_a_title_instructions_and_one_qr_per_credential(
        client: Client, services: Services) -> None:
    who = _session(client, services)
    issued = _issue(client, who, 4)
    codes, sheet = issued["codes"], issued["sheet_html"]
    tags = _parse(sheet)
    text = "".join(tags.text)

    assert ("html", {"lang": "zh-CN"}) in tags.tags
    title = re.search(r"<title>(.*?)</title>", sheet)
    assert title and title.group(1) == "2025年度发改局民主测评 · 测评凭条（干部职工）"
    heading = re.search(r"<h1>(.*?)</h1>", sheet)
    assert heading and heading.group(1) == "2025年度 · 2025年度发改局民主测评"
    assert f"测评会话：{S} · 参评人类别：干部职工 · 本页 4 张凭条" in text
    assert "被测评单位：发改局" in text  # the unit of all three subjects, once
    steps = re.findall(r"<li>(.*?)</li>", sheet)
    assert len(steps) == 5
    assert all(re.search(r"[\u4e00-\u9fff]", s) for s in steps)
    assert "随机" in steps[0] and "不登记" in steps[0]  # handed out unlinkably
    assert "只能提交一次" in steps[1]  # the session allows no revote

    # One slip per credential, each QR code encoding exactly that credential's vote URL.
    slips = re.findall(r'<div class="slip">(.*?)</div>', sheet)
    assert len(slips) == len(codes) == 4
    base = "http://testserver.local"
    assert issued["vote_urls"] == [f"{base}/vote/{S}#c={c}" for c in codes]
    assert _qr_paths(sheet) == [_expected_path(u) for u in issued["vote_urls"]]
    for slip, code, url in zip(slips, codes, issued["vote_urls"], strict=True):
        assert f"凭证码 {code}" in slip
        assert url in slip
    # A slip says nothing but its credential: the slips differ in the code alone.
    blanked = {re.sub(r"<svg.*?</svg>", "QR", s).replace(c, "CODE")
               for s, c in zip(slips, codes, strict=True)}
    assert len(blanked) == 1
    # No name of anyone: the subjects' (张一, 赵四) nor any rater's.
    assert "张一" not in sheet and "赵四" not in sheet


def test_the_public_base_url_setting_makes_the_urls_and_codes(
        settings: Settings, services: Services) -> None:
    app = create_app(settings.with_overrides(public_base_url=PUBLIC + "/"), services=services)
    with TestClient(app=app, base_url="http://10.0.0.7:8000") as client:
        who = _session(client, services)
        issued = _issue(client, who, 2)
    urls = [f"{PUBLIC}/vote/{S}#c={c}" for c in issued["codes"]]
    assert issued["vote_urls"] == urls
    assert _qr_paths(issued["sheet_html"]) == [_expected_path(u) for u in urls]
    assert "10.0.0.7" not in issued["sheet_html"]


def test_without_the_setting_the_request_base_url_is_used(
        settings: Settings, services: Services) -> None:
    assert settings.public_base_url is None
    app = create_app(settings, services=services)
    with TestClient(app=app, base_url="http://10.0.0.7:8000") as client:
        who = _session(client, services)
        issued = _issue(client, who, 1)
    assert issued["vote_urls"] == [f"http://10.0.0.7:8000/vote/{S}#c={issued['codes'][0]}"]
    assert _qr_paths(issued["sheet_html"]) == [_expected_path(issued["vote_urls"][0])]


@pytest.mark.parametrize("value", ["ftp://kaoping.example", "kaoping.example",
                                   "https://kaoping.example/?x=1", "https://kaoping.example/#c",
                                   "https:// kaoping.example"])
def test_a_malformed_public_base_url_is_refused_at_start(value: str) -> None:
    with pytest.raises(SettingsError, match="KAOPING_PUBLIC_BASE_URL"):
        load_settings({"KAOPING_PUBLIC_BASE_URL": value})


def test_a_public_base_url_with_a_path_is_accepted() -> None:
    settings = load_settings({"KAOPING_PUBLIC_BASE_URL": PUBLIC})
    assert settings.public_base_url == PUBLIC
    assert vote_url(PUBLIC + "/", "s", "c") == f"{PUBLIC}/vote/s#c=c"


def test_the_page_names_the_subjects_and_states_the_rules(client: Client,
                                                          services: Services) -> None:
    who = _session(client, services)
    _issue(client, who, 2)
    ok(client.post(f"/api/v1/sessions/{S}/open", json={}, headers=who.org))
    page = client.get(f"/vote/{S}")
    assert page.status_code == 200
    headings = re.findall(r"<section class=\"subject\"[^>]*><h2>(.*?)</h2>"
                          r"<p class=\"who\">(.*?) <code class=\"code\">(.*?)</code>", page.text)
    assert headings == [("发改局", "领导班子", "team:E1"),
                        ("张一", "发改局 · 党政正职", "cadre:P1"),
                        ("赵四", "发改局 · 副职", "cadre:D1")]
    rules = re.findall(r"<li>(.*?)</li>", page.text)
    assert rules[0] == "请对每位测评对象的每个项目（德、绩）各选一项，共 6 项；有漏选的选票无效。"
    # 30 % of 3 subjects, rounded up: the number the tally applies (domain/ballots.top_limit)
    assert "“优秀”至多评给 1 名测评对象（任一项目选了“优秀”即计一名）；超过的选票无效。" in rules
    assert "所有测评对象的所有项目都选同一档次的选票无效。" in rules  # 3 subjects: the default
    assert "选“不了解”的项目不计入得分。" in rules
    assert 'id="ballot"' in page.text
    assert f'href="/vote/{S}/board"' in page.text
    # The English page says the same in English (for Accept-Language: en only).
    english = client.get(f"/vote/{S}", headers={"Accept-Language": "en"}).text
    assert "At most 1 subjects may get “优秀”" in english
    assert "领导班子" not in english


def test_a_session_not_open_shows_its_state_and_no_form(client: Client,
                                                       services: Services) -> None:
    who = _session(client, services)
    frozen = client.get(f"/vote/{S}").text
    assert 'id="ballot"' not in frozen and "<input" not in frozen
    assert "本次测评尚未开始投票" in frozen
    _issue(client, who, 1)
    ok(client.post(f"/api/v1/sessions/{S}/open", json={}, headers=who.org))
    ok(client.post(f"/api/v1/sessions/{S}/close", json={}, headers=who.org))
    closed = client.get(f"/vote/{S}").text
    assert 'id="ballot"' not in closed and "<input type=\"radio\"" not in closed
    assert "本次测评已结束，不再接受投票。" in closed
    assert f'<a href="/vote/{S}/board">' in closed
    board = client.get(f"/vote/{S}/board")
    assert board.status_code == 200
    assert board.headers["content-type"].startswith("text/html")
    assert "参加人数未达到规定，本次测评无效，不产生结果。" in board.text  # nobody voted
    cells = re.findall(r"<td>(.*?)</td>", board.text)
    assert cells == ["20", "0", "0", "0", "0", "否"]
    assert "共 0 张" in board.text
