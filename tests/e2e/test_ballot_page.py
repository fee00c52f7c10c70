"""The ballot page, as a voter uses it: a phone (or a desktop) opens the QR code's URL and votes.

A real server is started as a subprocess (``kaoping migrate``, ``kaoping serve``) on 127.0.0.1
with a temporary SQLite database; the organizer's steps go through the public HTTP API with an
API key made by ``kaoping keys create``. The voter's steps are done in Debian's headless Chromium
(``/usr/bin/chromium``) driven by Playwright, which never downloads a browser of its own. A
missing browser fails the test (the project does not skip tests); ``.ci/run`` installs it.
Every scenario runs on a phone and on a desktop viewport; screenshots are kept in
tests/artifacts/ballot-page/ (not committed).
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from playwright.sync_api import Browser, Page, Request, ViewportSize, expect, sync_playwright

from domain.ballots import SessionDefinition, ballot_problem
from tests.e2e.live_server import Server, http, kaoping, serve
from tests.e2e.test_ballot_sheet import DEFINITION
from tests.e2e.test_cycle_scenario import CADRES, UNITS

CHROMIUM = Path("/usr/bin/chromium")
# The machine's network is closed: these flags keep Chromium from trying to reach it.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHECKPOINT_TIMEOUT = 10.0
UI_TIMEOUT_MS = 10_000
PHONE = ViewportSize(width=390, height=844)
DESKTOP = ViewportSize(width=1280, height=900)
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "ballot-page"

S: str = DEFINITION["code"]
TITLE: str = DEFINITION["title"]
SUBJECTS: list[str] = DEFINITION["subjects"]
NAMES = ["发改局", "张一", "赵四"]  # the roster's names of SUBJECTS (test_cycle_scenario)
DETAILS = ["领导班子", "发改局 · 党政正职", "发改局 · 副职"]
ITEMS: list[dict[str, str]] = DEFINITION["items"]
OPTIONS: list[dict[str, Any]] = DEFINITION["options"]
LABEL = {o["code"]: o["label"] for o in OPTIONS}
# A valid ballot: 优秀 for one subject only (30 % of 3, rounded up), not all alike.
CHOICES: dict[str, dict[str, str]] = {
    "team:E1": {"de": "excellent", "ji": "good"},
    "cadre:P1": {"de": "good", "ji": "good"},
    "cadre:D1": {"de": "good", "ji": "unknown"},
}
CLOSED = {**DEFINITION, "code": "mzcp-2025-closed", "title": "2025年度工信局民主测评",
          "subjects": ["team:E2"]}
MISSING = "未找到凭证：请扫描纸质凭条上的二维码。"  # api/vote_text.py JS_TEXT["zh"]["missing"]
TRACKER = re.compile(r"^[A-Za-z0-9+/]{43}=$")  # base64 of a 32-byte leaf hash: 44 characters
LATIN = re.compile(r"[A-Za-z]{3,}")  # an English word on the Chinese page


# ---------------------------------------------------------------------------------------------
# The product, run as a user runs it (as in test_outside_verifier.py)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("kaoping-ballot-page")) as srv:
        yield srv


@dataclass
class Sessions:
    server: Server
    vote_urls: list[str]
    closed_url: str

    def credential(self) -> str:
        """A vote URL no test has used yet."""
        return self.vote_urls.pop()


def _organizer(server: Server, method: str, path: str, key: str, body: object) -> Any:
    status, answer = http(method, f"{server.url}{path}", body, {"X-API-Key": key})
    assert status == 201, f"{method} {path}: {status} {answer}\n{server.log_tail()}"
    return answer


def _open(server: Server, key: str, definition: dict[str, Any], count: int) -> list[str]:
    code = definition["code"]
    _organizer(server, "POST", "/api/v1/sessions", key, definition)
    _organizer(server, "POST", f"/api/v1/sessions/{code}/freeze", key, {})
    issued = _organizer(server, "POST", f"/api/v1/sessions/{code}/credentials", key,
                        {"rater_class": "cadres", "count": count})
    _organizer(server, "POST", f"/api/v1/sessions/{code}/open", key, {})
    for url, credential in zip(issued["vote_urls"], issued["codes"], strict=True):
        assert url == f"{server.url}/vote/{code}#c={credential}", url
    assert "<!doctype html>" in issued["sheet_html"]
    urls: list[str] = issued["vote_urls"]
    return urls


@pytest.fixture(scope="module")
def sessions(server: Server) -> Sessions:
    """As the organizer: the city and the cycle's roster (names), then one session open and
    one closed."""
    out = kaoping(
        server.env, server.workdir, "keys", "create", "--role", "organizer", "--name", "t"
    )
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, "kaoping keys create printed nothing"
    key = lines[-1].strip()
    _organizer(server, "POST", "/api/v1/imports", key, {"units": UNITS, "cadres": CADRES})
    _organizer(server, "POST", "/api/v1/cycles", key, {"year": 2025})
    _organizer(server, "POST", "/api/v1/cycles/2025/roster", key, {})
    urls = _open(server, key, DEFINITION, 12)
    closed = _open(server, key, CLOSED, 1)
    _organizer(server, "POST", f"/api/v1/sessions/{CLOSED['code']}/close", key, {})
    return Sessions(server=server, vote_urls=urls, closed_url=closed[0])


# ---------------------------------------------------------------------------------------------
# The voter's phone, or desk
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        ci = " (CI=true)" if os.environ.get("CI", "").lower() == "true" else ""
        pytest.fail(
            f"{CHROMIUM} is missing{ci}: the ballot-page test needs Debian's chromium "
            "(`apt-get install -y chromium`, as .ci/run does); it is never skipped"
        )
    with sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Device:
    name: str
    page: Page
    requests: list[str]
    posted: list[str]
    errors: list[str]

    def foreign_requests(self, netloc: str) -> list[str]:
        return [u for u in self.requests if urlsplit(u).netloc != netloc]

    def shot(self, what: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{what}-{self.name}.png"), full_page=True)


@pytest.fixture(params=["phone", "desktop"])
def device(request: pytest.FixtureRequest, browser: Browser, sessions: Sessions,
           ) -> Iterator[Device]:
    phone = request.param == "phone"
    context = browser.new_context(
        viewport=PHONE if phone else DESKTOP, locale="zh-CN", is_mobile=phone, has_touch=phone,
        device_scale_factor=3 if phone else 1)
    context.grant_permissions(["clipboard-read", "clipboard-write"],
                              origin=sessions.server.url)
    try:
        context.set_default_timeout(UI_TIMEOUT_MS)
        page = context.new_page()
        found = Device(name=request.param, page=page, requests=[], posted=[], errors=[])

        def on_request(r: Request) -> None:
            found.requests.append(r.url)
            if r.method == "POST":
                found.posted.append(r.url)

        page.on("request", on_request)
        page.on("pageerror", lambda exc: found.errors.append(str(exc)))
        yield found
    finally:
        context.close()


def _section(page: Page, name: str) -> Any:
    return page.locator("section.subject").filter(has=page.get_by_role("heading", name=name))


def _choose(page: Page, choices: dict[str, dict[str, str]]) -> None:
    for subject, items in choices.items():
        section = _section(page, NAMES[SUBJECTS.index(subject)])
        for item in ITEMS:
            group = section.get_by_role("group", name=item["label"], exact=True)
            label = LABEL[items[item["code"]]]
            group.locator("label").get_by_text(label, exact=True).click()
            expect(group.get_by_role("radio", name=label, exact=True)).to_be_checked()


def _wait_for_checkpoint(server: Server, size: int) -> None:
    deadline = time.monotonic() + CHECKPOINT_TIMEOUT
    while True:
        status, note = http("GET", f"{server.url}/api/v1/ledger/checkpoint")
        if status == 200:
            text = note.decode() if isinstance(note, bytes) else str(note)
            if int(text.split("\n")[1]) >= size:
                return
        if time.monotonic() > deadline:
            pytest.fail(
                f"no checkpoint covering {size} leaves after {CHECKPOINT_TIMEOUT}s\n"
                + server.log_tail()
            )
        time.sleep(0.1)


def _luminance(rgb: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+", rgb)[:3]]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(page: Page, selector: str) -> float:
    """WCAG contrast of an element's text against the first opaque background behind it."""
    fg, bg = page.locator(selector).first.evaluate("""el => {
        let bg = 'rgb(255, 255, 255)';
        for (let n = el; n; n = n.parentElement) {
          const c = getComputedStyle(n).backgroundColor;
          if (c && c !== 'transparent' && !c.startsWith('rgba(0, 0, 0, 0')) { bg = c; break; }
        }
        return [getComputedStyle(el).color, bg];
    }""")
    light, dark = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------


def test_names_rules_and_a_bad_ballot_blocked_in_chinese(sessions: Sessions,
                                                         device: Device) -> None:
    server, page = sessions.server, device.page
    page.goto(sessions.credential())

    # The session, its subjects by name (their unit and post beside, the code small).
    expect(page).to_have_title(re.compile(re.escape(TITLE)))
    expect(page.locator("h1")).to_have_text(TITLE)
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("section.subject h2")).to_have_text(NAMES)
    expect(page.locator("section.subject .who")).to_have_text(
        [f"{d} {s}" for d, s in zip(DETAILS, SUBJECTS, strict=True)])
    expect(page.locator("section.subject .who code")).to_have_text(SUBJECTS)
    expect(page.get_by_role("link", name=re.compile("公告板"))).to_have_attribute(
        "href", f"/vote/{S}/board")
    # The rules, in words, from the numbers the tally applies.
    rules = page.locator("#rules li")
    expect(rules.first).to_have_text(
        "请对每位测评对象的每个项目（德、绩）各选一项，共 6 项；有漏选的选票无效。")
    expect(rules.filter(has_text="至多评给 1 名测评对象")).to_have_count(1)
    expect(rules.filter(has_text="都选同一档次的选票无效")).to_have_count(1)
    # Accessibility: a fieldset with a legend per item, each radio inside its label.
    expect(page.locator("fieldset")).to_have_count(len(SUBJECTS) * len(ITEMS))
    expect(page.locator("fieldset:not(:has(> legend))")).to_have_count(0)
    expect(page.locator("input[type=radio]:not(label > input)")).to_have_count(0)
    expect(page.locator("#check")).to_have_text(
        "已选 0/6 项。 尚不能提交：还有 6 项未选择："
        "发改局·德、发改局·绩、张一·德、张一·绩、赵四·德 等。")
    device.shot("1-open")

    # Nothing chosen: the button says what is missing and sends nothing.
    page.get_by_role("button", name="提交").click()
    problems = page.locator("#problems")
    expect(problems).to_be_visible()
    expect(problems).to_contain_text("还有 6 项未选择")
    expect(page.locator("#check")).to_have_text("已选 0/6 项。")  # the alert says the rest
    expect(page.locator("fieldset.missing")).to_have_count(6)
    device.shot("2-missing")
    _choose(page, {"team:E1": {"de": "good", "ji": "good"}})  # the outlines follow the answers
    expect(page.locator("fieldset.missing")).to_have_count(4)
    expect(problems).to_contain_text("还有 4 项未选择：张一·德")

    # 优秀 for two subjects where one is allowed.
    _choose(page, {"team:E1": {"de": "excellent", "ji": "good"},
                   "cadre:P1": {"de": "good", "ji": "excellent"},
                   "cadre:D1": {"de": "good", "ji": "good"}})
    page.get_by_role("button", name="提交").click()
    expect(problems).to_have_text(
        "尚不能提交：“优秀”至多 1 名测评对象，当前 2 名：发改局、张一。")
    expect(page.locator("fieldset.missing")).to_have_count(0)
    device.shot("3-too-many-top")

    # The same answer everywhere (with three subjects: invalid by the session's rule).
    _choose(page, {s: {"de": "good", "ji": "good"} for s in SUBJECTS})
    page.get_by_role("button", name="提交").click()
    expect(problems).to_have_text(
        "尚不能提交：所有项目都选择了同一档次“称职”，此类选票无效；请按实际情况分别评价。")
    assert not LATIN.search(problems.inner_text())
    assert not LATIN.search(page.locator("#check").inner_text())

    # Keyboard: the radios are native (focus, arrow keys move the choice within an item).
    first = page.locator("fieldset").first.get_by_role("radio", name="称职", exact=True)
    first.focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("fieldset").first.get_by_role("radio", name="不称职",
                                                      exact=True)).to_be_checked()
    expect(page.locator("#problems")).to_be_hidden()  # the ballot is valid now
    expect(page.locator("#check")).to_have_text("已选 6/6 项。 已全部填写，可以提交。")
    # Contrast (WCAG AA, 4.5:1) of the text a voter reads.
    for selector in ("h1", "section.subject .who", "section.subject .who code", "#rules li",
                     "label", "#check", "button[type=submit]"):
        assert _contrast(page, selector) >= 4.5, selector  # WCAG AA

    assert device.posted == []  # no ballot was sent while it was invalid
    assert device.foreign_requests(server.netloc) == []
    assert device.errors == []


def test_a_good_ballot_gets_a_receipt_to_copy(sessions: Sessions, device: Device) -> None:
    server, page = sessions.server, device.page
    vote_url = sessions.credential()
    credential = vote_url.split("#c=", 1)[1]
    page.goto(vote_url)
    _choose(page, CHOICES)
    expect(page.locator("#check")).to_contain_text("已全部填写，可以提交。")
    with page.expect_response(f"{server.url}/api/v1/sessions/{S}/ballots") as cast_info:
        page.get_by_role("button", name="提交").click()
    assert cast_info.value.status == 201, cast_info.value.text()

    # The receipt: the tracker (the leaf hash), the log position, a copy button, the board.
    tracker_el = page.locator("#tracker")
    tracker_el.wait_for()
    tracker = tracker_el.inner_text().strip()
    assert TRACKER.match(tracker), tracker
    assert len(base64.b64decode(tracker)) == 32
    match = re.fullmatch(r"日志位置: (\d+)", page.locator("#position").inner_text().strip())
    assert match
    position = int(match.group(1))
    expect(page.locator("form#ballot")).to_be_hidden()
    expect(page.locator("#result")).to_contain_text("已提交")
    expect(page.locator("#result").get_by_role("link", name="打开公告板")).to_have_attribute(
        "href", f"/vote/{S}/board")
    page.get_by_role("button", name="复制回执").click()
    expect(page.locator("#copied")).to_have_text("已复制")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == f"测评 {S}\n追踪码（叶哈希）：{tracker}\n日志位置：{position}"
    device.shot("4-receipt")

    # The page posted exactly what the voter chose, with the credential from the fragment.
    posted = json.loads(cast_info.value.request.post_data or "null")
    assert posted == {"credential": credential, "answers": CHOICES}
    # The tracker is the ballot's leaf hash as the public log serves it.
    _wait_for_checkpoint(server, position + 1)
    status, leaves = http(
        "GET", f"{server.url}/api/v1/ledger/leaves?start={position}&end={position + 1}"
    )
    assert status == 200, leaves
    assert leaves[0]["leaf_hash"] == tracker

    # The same slip again, with other answers: refused, and said in Chinese.
    page.goto("about:blank")
    page.goto(vote_url)
    _choose(page, {**CHOICES, "cadre:D1": {"de": "poor", "ji": "unknown"}})
    with page.expect_response(f"{server.url}/api/v1/sessions/{S}/ballots") as again:
        page.get_by_role("button", name="提交").click()
    assert again.value.status == 409
    refusal = page.locator("#result")
    expect(refusal).to_have_text("提交失败：该凭条已经投过票，不能再次提交。")
    expect(refusal).to_have_attribute("data-rule", "ballot.credential-used")
    assert not LATIN.search(page.locator("main").inner_text().replace(S, "").replace(
        "team:E1", "").replace("cadre:P1", "").replace("cadre:D1", ""))
    device.shot("5-refused")

    # Nothing but the test server was asked for anything; the credential is in no request
    # line and not in the server's log.
    assert device.foreign_requests(server.netloc) == []
    assert not [u for u in device.requests if credential in u]
    assert credential not in server.log.read_text(errors="replace")
    assert device.errors == []


def test_an_unknown_credential_is_refused_in_chinese(sessions: Sessions,
                                                     device: Device) -> None:
    page = device.page
    page.goto(f"{sessions.server.url}/vote/{S}#c=not-a-credential-0000")
    _choose(page, CHOICES)
    page.get_by_role("button", name="提交").click()
    expect(page.locator("#result")).to_have_text("提交失败：凭证无效：请确认扫描的是本次测评的凭条。")
    expect(page.get_by_role("button", name="提交")).to_be_enabled()  # the voter may retry
    assert device.errors == []


def test_a_closed_session_shows_its_state_and_no_form(sessions: Sessions,
                                                      device: Device) -> None:
    page = device.page
    page.goto(sessions.closed_url)
    expect(page.locator("h1")).to_have_text(CLOSED["title"])
    expect(page.locator("#state")).to_have_text("本次测评已结束，不再接受投票。计票结果与追踪码见公告板。")
    expect(page.locator("form#ballot")).to_have_count(0)
    expect(page.locator("input")).to_have_count(0)
    expect(page.get_by_role("button")).to_have_count(0)
    device.shot("6-closed")
    page.get_by_role("link", name=re.compile("公告板")).click()
    expect(page).to_have_url(f"{sessions.server.url}/vote/{CLOSED['code']}/board")
    expect(page.locator("#outcome")).to_have_text("参加人数未达到规定，本次测评无效，不产生结果。")
    expect(page.locator("#classes tbody td")).to_have_text(["20", "0", "0", "0", "0", "否"])
    device.shot("7-board")
    assert device.errors == []


def test_without_a_credential_the_form_is_hidden(sessions: Sessions, device: Device) -> None:
    page = device.page
    page.goto(f"{sessions.server.url}/vote/{S}")
    expect(page.locator("h1")).to_have_text(TITLE)
    expect(page.locator("#result")).to_have_text(MISSING)
    expect(page.locator("form#ballot")).to_be_hidden()
    expect(page.locator("#tracker")).to_have_count(0)
    assert device.foreign_requests(sessions.server.netloc) == []
    assert device.errors == []


# ---------------------------------------------------------------------------------------------
# The browser's check is the tally's rule
# ---------------------------------------------------------------------------------------------

SET_ANSWERS = """answers => {
  for (const el of document.querySelectorAll('input[type=radio]')) {
    el.checked = (answers[el.dataset.subject] || {})[el.dataset.item] === el.value;
  }
  document.getElementById('ballot').dispatchEvent(new Event('change'));
  return document.getElementById('check').textContent;
}"""
ANSWER = st.sampled_from([None, *LABEL])  # None: left out
BALLOTS = st.fixed_dictionaries({s: st.fixed_dictionaries({i["code"]: ANSWER for i in ITEMS})
                                 for s in SUBJECTS})


def test_the_page_accepts_exactly_the_ballots_the_tally_counts_valid(
        sessions: Sessions, browser: Browser) -> None:
    """Any ballot, partly answered or not: the page lets it be sent iff ``ballot_problem``
    finds nothing wrong with it (the same definition, the same rules)."""
    definition = msgspec.convert(DEFINITION, SessionDefinition, strict=False)
    page = browser.new_page(viewport=DESKTOP, locale="zh-CN")
    page.goto(f"{sessions.server.url}/vote/{S}#c=only-checking-not-sending")
    expect(page.locator("form#ballot")).to_be_visible()

    @settings(max_examples=150, deadline=None, derandomize=True)
    @given(BALLOTS)
    def agree(raw: dict[str, dict[str, str | None]]) -> None:
        answers = {s: {i: o for i, o in items.items() if o is not None}
                   for s, items in raw.items()}
        answers = {s: items for s, items in answers.items() if items}
        said = page.evaluate(SET_ANSWERS, answers)
        sendable = said.endswith("已全部填写，可以提交。")
        problem = ballot_problem(definition, answers)
        assert sendable == (problem is None), (answers, problem, said)

    try:
        agree()
    finally:
        page.close()
