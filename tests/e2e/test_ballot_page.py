"""The ballot page, as a voter uses it: a phone opens the QR code's URL and votes.

A real server is started as a subprocess (``kaoping migrate``, ``kaoping serve``) on 127.0.0.1
with a temporary SQLite database; the organizer's steps go through the public HTTP API with an
API key made by ``kaoping keys create``. The voter's steps are done in Debian's headless Chromium
(``/usr/bin/chromium``) driven by Playwright, which never downloads a browser of its own. A
missing browser fails the test (the project does not skip tests); ``.ci/run`` installs it.
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

import pytest
from playwright.sync_api import Browser, Page, Request, ViewportSize, expect, sync_playwright

from tests.e2e.live_server import Server, http, kaoping, serve
from tests.e2e.test_ballots import DEFINITION

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

S: str = DEFINITION["code"]
TITLE: str = DEFINITION["title"]
SUBJECTS: list[str] = DEFINITION["subjects"]
ITEMS: list[dict[str, str]] = DEFINITION["items"]
OPTIONS: list[dict[str, Any]] = DEFINITION["options"]
# What the voter picks (subject -> item -> option code); a valid ballot under DEFINITION's rules.
CHOICES: dict[str, dict[str, str]] = {
    "team:E1": {"de": "excellent", "ji": "good"},
    "team:E2": {"de": "good", "ji": "fair"},
}
MISSING = "未找到凭证：请扫描纸质凭条上的二维码。"  # api/routes/vote.py TEXT["zh"]["missing"]
TRACKER = re.compile(r"^[A-Za-z0-9+/]{43}=$")  # base64 of a 32-byte leaf hash: 44 characters


# ---------------------------------------------------------------------------------------------
# The product, run as a user runs it (as in test_outside_verifier.py)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("kaoping-ballot-page")) as srv:
        yield srv


@dataclass
class OpenSession:
    server: Server
    vote_urls: list[str]


def _organizer(server: Server, method: str, path: str, key: str, body: object) -> Any:
    status, answer = http(method, f"{server.url}{path}", body, {"X-API-Key": key})
    assert status == 201, f"{method} {path}: {status} {answer}\n{server.log_tail()}"
    return answer


@pytest.fixture(scope="module")
def session(server: Server) -> OpenSession:
    """As the organizer: define, freeze, issue credentials, open."""
    out = kaoping(
        server.env, server.workdir, "keys", "create", "--role", "organizer", "--name", "t"
    )
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, "kaoping keys create printed nothing"
    key = lines[-1].strip()
    _organizer(server, "POST", "/api/v1/sessions", key, DEFINITION)
    _organizer(server, "POST", f"/api/v1/sessions/{S}/freeze", key, {})
    issued = _organizer(
        server,
        "POST",
        f"/api/v1/sessions/{S}/credentials",
        key,
        {"rater_class": "cadres", "count": 2},
    )
    _organizer(server, "POST", f"/api/v1/sessions/{S}/open", key, {})
    urls: list[str] = issued["vote_urls"]
    assert len(urls) == 2
    for url, code in zip(urls, issued["codes"], strict=True):
        assert url == f"{server.url}/vote/{S}#c={code}", url
    return OpenSession(server=server, vote_urls=urls)


# ---------------------------------------------------------------------------------------------
# The voter's phone
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
class Phone:
    page: Page
    requests: list[str]
    errors: list[str]

    def foreign_requests(self, netloc: str) -> list[str]:
        return [u for u in self.requests if urlsplit(u).netloc != netloc]


@pytest.fixture
def phone(browser: Browser) -> Iterator[Phone]:
    context = browser.new_context(
        viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True, device_scale_factor=3
    )
    try:
        context.set_default_timeout(UI_TIMEOUT_MS)
        page = context.new_page()
        requests: list[str] = []
        errors: list[str] = []

        def on_request(request: Request) -> None:
            requests.append(request.url)

        page.on("request", on_request)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield Phone(page=page, requests=requests, errors=errors)
    finally:
        context.close()


def _label(option_code: str) -> str:
    return str(next(o["label"] for o in OPTIONS if o["code"] == option_code))


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


def test_a_voter_casts_a_ballot_on_a_phone(session: OpenSession, phone: Phone) -> None:
    server, page = session.server, phone.page
    vote_url = session.vote_urls[0]
    credential = vote_url.split("#c=", 1)[1]
    page.goto(vote_url)

    # What the voter sees: the session, every subject and every item, and an open form.
    expect(page).to_have_title(re.compile(re.escape(TITLE)))
    expect(page.locator("h1")).to_have_text(TITLE)
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("[role=alert]")).to_have_count(0)  # the session is open
    form = page.locator("form#ballot")
    expect(form).to_be_visible()
    expect(page.locator("section h2")).to_have_text(SUBJECTS)
    for subject in SUBJECTS:
        section = page.locator("section").filter(has=page.get_by_role("heading", name=subject))
        expect(section.locator("fieldset > legend")).to_have_text([i["label"] for i in ITEMS])

    # Accessibility: each item is a fieldset with a legend, each radio sits inside its label.
    expect(page.locator("fieldset")).to_have_count(len(SUBJECTS) * len(ITEMS))
    expect(page.locator("fieldset:not(:has(> legend))")).to_have_count(0)
    radios = page.locator("input[type=radio]")
    expect(radios).to_have_count(len(SUBJECTS) * len(ITEMS) * len(OPTIONS))
    expect(page.locator("input[type=radio]:not(label > input)")).to_have_count(0)
    for fieldset in page.locator("fieldset").all():
        expect(fieldset.locator("label")).to_have_text([o["label"] for o in OPTIONS])
        expect(fieldset.get_by_role("radio")).to_have_count(len(OPTIONS))

    # Choose one option per item by tapping its label, then submit.
    for subject, items in CHOICES.items():
        section = page.locator("section").filter(has=page.get_by_role("heading", name=subject))
        for item in ITEMS:
            group = section.get_by_role("group", name=item["label"], exact=True)
            label = _label(items[item["code"]])
            group.locator("label").get_by_text(label, exact=True).click()
            expect(group.get_by_role("radio", name=label, exact=True)).to_be_checked()
    expect(page.locator("input[type=radio]:checked")).to_have_count(len(SUBJECTS) * len(ITEMS))
    with page.expect_response(f"{server.url}/api/v1/sessions/{S}/ballots") as cast_info:
        page.get_by_role("button", name="提交").click()
    assert cast_info.value.status == 201, cast_info.value.text()

    # The receipt: the tracker and the log position, and the form gone.
    tracker_el = page.locator("#tracker")
    tracker_el.wait_for()
    tracker = tracker_el.inner_text().strip()
    assert TRACKER.match(tracker), tracker
    assert len(base64.b64decode(tracker)) == 32
    position_text = page.locator("#position").inner_text()
    match = re.fullmatch(r"日志位置: (\d+)", position_text.strip())
    assert match, position_text
    position = int(match.group(1))
    expect(form).to_be_hidden()
    expect(page.locator("#result")).to_contain_text("已提交")

    # The page posted exactly what the voter chose, with the credential from the fragment.
    posted = json.loads(cast_info.value.request.post_data or "null")
    assert posted == {"credential": credential, "answers": CHOICES}

    # The tracker is the ballot's leaf hash as the public log serves it...
    _wait_for_checkpoint(server, position + 1)
    status, leaves = http(
        "GET", f"{server.url}/api/v1/ledger/leaves?start={position}&end={position + 1}"
    )
    assert status == 200, leaves
    assert leaves[0]["index"] == position
    assert leaves[0]["leaf_hash"] == tracker
    # ...and a retry of the same ballot through the API gets the same receipt.
    status, again = http(
        "POST",
        f"{server.url}/api/v1/sessions/{S}/ballots",
        {"credential": credential, "answers": CHOICES},
    )
    assert status == 201, again
    assert (again["tracker"], again["position"]) == (tracker, position)

    # Nothing but the test server was asked for anything (no third-party assets).
    assert phone.requests, "no request recorded"
    assert phone.foreign_requests(server.netloc) == []
    # The credential rode in the #fragment: it is in no request line and not in the server log.
    assert not [u for u in phone.requests if credential in u]
    assert credential not in server.log.read_text(errors="replace")
    assert phone.errors == []


def test_without_a_credential_the_form_is_hidden(session: OpenSession, phone: Phone) -> None:
    server, page = session.server, phone.page
    page.goto(session.vote_urls[1].split("#", 1)[0])
    expect(page.locator("h1")).to_have_text(TITLE)
    expect(page.locator("#result")).to_have_text(MISSING)
    expect(page.locator("form#ballot")).to_be_hidden()
    expect(page.locator("#tracker")).to_have_count(0)
    assert phone.foreign_requests(server.netloc) == []
    assert phone.errors == []
