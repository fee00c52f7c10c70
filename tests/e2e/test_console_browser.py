"""Issue 14: the audit console in Debian's headless Chromium (Playwright, never its own browser),
against a real server (``kaoping migrate``, ``kaoping serve``), on desktop and phone sizes.

A person signs in with a token from ``kaoping tokens issue``, opens the dashboard, a score card
whose history chart ECharts draws, and the replay, where every step's inclusion proof and the
checkpoint's Ed25519 signature are verified by the page's own WebCrypto code — and a proof
altered on the wire turns the badge to failed. Keyboard navigation and colour contrast
(computed colours, >= 4.5:1) are checked on the main pages. Screenshots are kept under
tests/artifacts/console/ (gitignored).
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.sync_api import Browser, Page, Route, ViewportSize, expect, sync_playwright

from service.keys import private_pem
from service.ledger.checkpoint import verifier_key
from service.settings import Settings
from tests.e2e.live_server import REPO, Server, http, kaoping, serve
from tests.e2e.test_ballot_page import CHROMIUM, CHROMIUM_ARGS, PHONE
from tests.e2e.test_cycle_scenario import CADRES, SCHEME, UNITS

ARTIFACTS = REPO / "tests" / "artifacts" / "console"
DESKTOP = ViewportSize(width=1280, height=900)
UI_TIMEOUT_MS = 15_000
expect.set_options(timeout=UI_TIMEOUT_MS)  # two cores shared with other work: be patient
Y = 2025
CARD = f"/console/cycles/{Y}/subjects/team:E3"
# The page's own check: every text element's computed colour against the first opaque
# background behind it (WCAG 2.x relative luminance); returns the failures.
CONTRAST_JS = """() => {
  const lum = (c) => { const [r, g, b] = c.map((v) => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const rgba = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const bg = (el) => { for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3); }
    return [255, 255, 255]; };
  const bad = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
    const box = el.getBoundingClientRect();
    if (!own || box.width === 0 || box.height === 0) continue;
    const fg = rgba(getComputedStyle(el).color).slice(0, 3);
    const [a, b] = [lum(fg), lum(bg(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) bad.push(el.tagName + " '" + el.textContent.trim().slice(0, 30) + "' "
      + ratio.toFixed(2));
  }
  return bad;
}"""


@dataclass
class City:
    server: Server
    tokens: dict[str, str]


def _token(server: Server, role: str, acts_as: str) -> str:
    out = kaoping(server.env, server.workdir, "tokens", "issue", "--role", role, "--as", acts_as)
    return out.strip().splitlines()[-1]


def _ok(server: Server, method: str, path: str, token: str, body: object,
        status: int = 201, extra: dict[str, str] | None = None) -> Any:
    got, answer = http(method, f"{server.url}{path}", body,
                       {"Authorization": f"Bearer {token}", **(extra or {})})
    assert got == status, f"{method} {path}: {got} {answer}\n{server.log_tail()}"
    return answer


def _until(what: str, check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _load(server: Server, t: dict[str, str]) -> None:
    """test_cycle_scenario's city, cycle and scores, over HTTP (its hand-computed results)."""
    base = f"/api/v1/cycles/{Y}"
    _ok(server, "POST", "/api/v1/imports", t["org"], {"units": UNITS, "cadres": CADRES})
    for code in ("L1", "L2"):
        _ok(server, "POST", "/api/v1/leaders", t["org"], {"code": code, "name": code})
    _ok(server, "POST", "/api/v1/cycles", t["org"], {"year": Y})
    etag = _until("the cycle's etag", lambda: _etag(server, base))
    _ok(server, "PUT", f"{base}/scheme", t["org"], SCHEME, 200, {"If-Match": etag})
    _until("the roster", lambda: http("POST", f"{server.url}{base}/roster", {}, {
        "Authorization": f"Bearer {t['org']}"})[0] == 201)
    _ok(server, "POST", f"{base}/freeze", t["org"], {})
    _ok(server, "POST", f"{base}/announcement", t["org"], {
        "team_members": ["考核组长 周某"], "starts_on": "2025-12-01", "ends_on": "2026-01-10",
        "hotline": "0371-12380"})
    _ok(server, "POST", f"{base}/scoring", t["org"], {})
    s = f"{base}/subjects"
    for subject, (a, b) in {"team:E1": (94, 92), "team:E2": (85, 87), "team:E3": (80, 84),
                            "team:F1": (78, 80)}.items():
        _ok(server, "POST", f"{s}/{subject}/leader-reviews", t["l1"], {"score": a})
        _ok(server, "POST", f"{s}/{subject}/leader-reviews", t["l2"], {"score": b})
    for subject, score, analysis in (("team:E1", 90, 88), ("team:E2", 95, 91),
                                     ("team:E3", 85, 86)):
        _ok(server, "POST", f"{s}/{subject}/indicators", t["f1"], {
            "indicator": "growth", "value": "7.1%", "score": score, "evidence": "统计公报"})
        _ok(server, "POST", f"{s}/{subject}/analysis", t["team"],
            {"dimension": "economy", "score": analysis})
    _ok(server, "POST", f"{s}/team:E3/adjustments", t["org"], {
        "adjustment": "bonus-1", "delta": "2", "reason": "省级表彰", "basis": "考核办法第十条",
        "evidence": "表彰文件"})
    _ok(server, "POST", f"{s}/team:E3/adjustments/bonus-1/approval", t["org2"], {})


def _etag(server: Server, path: str) -> str | None:
    """The ETag header (live_server's small client returns bodies only)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{server.url}{path}", timeout=10) as resp:
        etag: str | None = resp.headers.get("ETag")
        return etag


def _ledger_key_with_a_plus(path: Path) -> None:
    """A ledger key whose verifier key's base64 holds "+" (about one key in two): the page must
    split ``name+id+key`` at its first two "+" only (it once did not, and failed such keys)."""
    while True:
        key = Ed25519PrivateKey.generate()
        vkey = verifier_key(Settings().ledger_origin, key.public_key())
        if "+" in vkey.split("+", 2)[2]:
            path.write_bytes(private_pem(key))
            path.chmod(0o600)
            return


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    tmp = tmp_path_factory.mktemp("kaoping-console")
    _ledger_key_with_a_plus(tmp / "ledger.key")  # live_server's KAOPING_SIGNING_KEY_PATH
    with serve(tmp) as server:
        tokens = {name: _token(server, role, who) for name, role, who in (
            ("org", "organizer", "staff:org-1"), ("org2", "organizer", "staff:org-2"),
            ("l1", "leader", "leader:L1"), ("l2", "leader", "leader:L2"),
            ("f1", "department", "department:F1"), ("team", "assessment-team", "team-member:T1"),
            ("supervisor", "supervisor", "staff:sup-1"), ("p3", "leader", "cadre:P3"))}
        _load(server, tokens)
        yield City(server, tokens)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing (scripts/system-deps installs it)"
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _page(browser: Browser, city: City, size: ViewportSize, who: str) -> Page:
    context = browser.new_context(viewport=size, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status == 404
            else None)
    page.goto(f"{city.server.url}/console/cycles/{Y}")
    expect(page).to_have_url(f"{city.server.url}/console/sign-in?next=/console/cycles/{Y}")
    page.fill("#token", city.tokens[who])
    page.click("form.stack button[type=submit]")
    expect(page).to_have_url(f"{city.server.url}/console/cycles/{Y}")
    page.errors = errors  # type: ignore[attr-defined]
    return page


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _no_errors(page: Page) -> None:
    assert "\n".join(page.errors) == ""  # type: ignore[attr-defined]


def _checkpoint_covers(city: City) -> None:
    """Wait for a signed checkpoint over every event written so far."""
    _, leaves = http("GET", f"{city.server.url}/api/v1/ledger/checkpoints?limit=1")
    target = leaves["items"][0]["size"] if leaves["items"] else 0
    status, body = http("GET", f"{city.server.url}/api/v1/ledger/leaves?start={target}"
                        f"&end={target + 1000}")
    head = target + (len(body) if status == 200 else 0)
    _until("a checkpoint over the whole log", lambda: http(
        "GET", f"{city.server.url}/api/v1/ledger/checkpoints?limit=1")[1]["items"][0]["size"]
        >= head)


@pytest.mark.parametrize(("size", "label"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_sign_in_dashboard_card_chart_and_verified_replay(browser: Browser, city: City,
                                                          size: ViewportSize,
                                                          label: str) -> None:
    page = _page(browser, city, size, "supervisor")
    expect(page.locator(".phase.current")).to_contain_text("评分")
    expect(page.locator("table.missing")).to_be_visible()
    _shot(page, f"{label}-dashboard")
    page.goto(f"{city.server.url}{CARD}")
    expect(page.locator(".composite")).to_have_text("86.10")
    _no_errors(page)
    expect(page.locator("#history-chart canvas")).to_have_count(1)
    _, history = http("GET", f"{city.server.url}/api/v1/cycles/{Y}/subjects/team:E3/history",
                      headers={"Authorization": f"Bearer {city.tokens['supervisor']}"})
    moved = [c for c in history if "composite" in c["changed"]]
    assert len(moved) >= 3
    # One point per change of the composite, each linked to its step of the replay.
    expect(page.locator("#history-chart")).to_have_attribute("data-rendered", str(len(moved)))
    _shot(page, f"{label}-card")
    if label == "phone":  # nothing runs off the side of a phone
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    _checkpoint_covers(city)
    page.goto(f"{city.server.url}{CARD}/replay")
    steps = page.locator("#steps > li.step")
    _, card = http("GET", f"{city.server.url}/api/v1/cycles/{Y}/subjects/team:E3/explain",
                   headers={"Authorization": f"Bearer {city.tokens['supervisor']}"})
    count = len(card["inputs"])  # two leaders, an indicator, analysis, the adjustment ...
    assert count >= 6
    expect(steps).to_have_count(count)
    expect(page.locator("#checkpoint-state")).to_have_attribute("data-signature", "verified")
    expect(page.locator('.badge[data-state="verified"]')).to_have_count(count)
    expect(page.locator("#step-count")).to_have_text(f"1 / {count}")
    _shot(page, f"{label}-replay")
    _no_errors(page)
    page.context.close()


def test_a_proof_altered_on_the_wire_fails_in_the_browser(browser: Browser, city: City) -> None:
    page = _page(browser, city, DESKTOP, "supervisor")
    _checkpoint_covers(city)

    def tamper(route: Route) -> None:
        resp = route.fetch()
        body = resp.json()
        if body["proof"]:
            first = body["proof"][0]
            body["proof"][0] = ("B" if first[0] != "B" else "C") + first[1:]
        route.fulfill(response=resp, json=body)

    page.route("**/api/v1/ledger/proofs/inclusion*", tamper)
    page.goto(f"{city.server.url}{CARD}/replay")
    count = page.locator("#steps > li.step").count()
    expect(page.locator('.badge[data-state="failed"]')).to_have_count(count)
    expect(page.locator('.badge[data-state="verified"]')).to_have_count(0)
    page.context.close()


def test_a_cadre_sees_a_refusal_not_another_s_card(browser: Browser, city: City) -> None:
    page = _page(browser, city, DESKTOP, "p3")
    resp = page.goto(f"{city.server.url}/console/cycles/{Y}/subjects/team:E1")
    assert resp is not None and resp.status == 403
    expect(page.locator("code.rule")).to_have_text("results.published")
    assert "86.10" not in page.content() and "94" not in page.locator("main").inner_text()
    page.context.close()


def test_keyboard_reaches_everything_and_steps_the_replay(browser: Browser,
                                                         city: City) -> None:
    page = _page(browser, city, DESKTOP, "supervisor")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    reached = {}
    for _ in range(40):  # from the main content on, by Tab alone
        page.keyboard.press("Tab")
        # Each focused element, and whether its focus is visible (it draws an outline).
        where, outline = page.evaluate("[document.activeElement.getAttribute('href') || "
                                       "document.activeElement.tagName, getComputedStyle("
                                       "document.activeElement).outlineStyle]")
        reached[where] = outline
    group = f"/console/cycles/{Y}/groups/economic-management?kind=team"
    assert group in reached
    assert reached[group] != "none"
    _checkpoint_covers(city)
    page.goto(f"{city.server.url}{CARD}/replay")
    page.focus("#next")
    page.keyboard.press("Enter")
    expect(page.locator("#step-count")).to_contain_text("2 / ")
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#step-count")).to_contain_text("1 / ")
    page.context.close()


@pytest.mark.parametrize("path", ["/console/sign-in", "/console", f"/console/cycles/{Y}",
                                  f"/console/cycles/{Y}/groups/economic-management",
                                  CARD, f"{CARD}/replay", "/console/access"])
def test_text_contrast_is_at_least_4_5_to_1(browser: Browser, city: City, path: str) -> None:
    page = _page(browser, city, DESKTOP, "supervisor")
    if path == "/console/sign-in":
        page.context.clear_cookies()
    page.goto(f"{city.server.url}{path}")
    if path.endswith("/replay"):
        expect(page.locator("#checkpoint-state")).to_have_attribute("data-signature",
                                                                    "verified")
    assert page.evaluate(CONTRAST_JS) == []
    page.context.close()


def test_artifacts_are_kept_out_of_git() -> None:
    assert "tests/artifacts/" in (REPO / ".gitignore").read_text().splitlines()
    assert isinstance(ARTIFACTS, Path)
