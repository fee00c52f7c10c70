"""Issue 12: the HTML pages work offline — every asset from this origin, pinned and recorded —
and carry a CSP without 'unsafe-inline'."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar.testing import TestClient
from playwright.sync_api import Browser, sync_playwright

from api.pages import ASSETS
from service.runtime import Services
from tests.e2e.live_server import Server, serve
from tests.e2e.test_ballot_page import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.test_ballots import DEFINITION

Client = TestClient[Any]


class Links(HTMLParser):
    """Every URL a page makes the browser load, and whether it has inline code."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href", "action"):
            if found.get(name):
                self.urls.append(str(found[name]))
        if tag == "style" or "style" in found or any(k.startswith("on") for k in found):
            self.inline.append(tag)
        if tag == "script" and not found.get("src"):
            self.inline.append("script")


def _pages(client: Client, services: Services) -> list[str]:
    from tests.e2e.test_cycle_scenario import People  # noqa: PLC0415

    resp = client.post("/api/v1/sessions", json=DEFINITION, headers=People(services).org)
    assert resp.status_code == 201, resp.text
    return ["/schema", "/schema/swagger", f"/vote/{DEFINITION['code']}"]


def test_no_page_loads_anything_from_another_origin(client: Client,
                                                    services: Services) -> None:
    for page in _pages(client, services):
        resp = client.get(page)
        assert resp.status_code == 200, page
        links = Links()
        links.feed(resp.text)
        assert links.urls, page
        assert [u for u in links.urls if urlsplit(u).scheme or urlsplit(u).netloc] == [], page
        assert links.inline == [], page
        for url in links.urls:
            if url.startswith("/assets/"):
                asset = client.get(url)
                assert asset.status_code == 200, url
                cache = asset.headers["cache-control"]
                assert "max-age=31536000" in cache and "immutable" in cache, url


def test_pages_have_a_csp_without_unsafe_inline(client: Client, services: Services) -> None:
    for page in _pages(client, services):
        csp = client.get(page).headers["content-security-policy"]
        rules = dict(part.strip().split(" ", 1) for part in csp.split(";"))
        assert "unsafe-inline" not in csp, page
        assert "unsafe-eval" not in csp, page
        assert rules["script-src"] == "'self'", page
        assert rules["style-src"] == "'self'", page
        assert rules["default-src"] == "'none'", page


def test_vendored_files_are_the_recorded_ones() -> None:
    recorded = json.loads((ASSETS / "VENDORED.json").read_text())
    assert recorded
    for folder, entry in recorded.items():
        assert re.fullmatch(r"[a-z-]+-\d+\.\d+\.\d+", folder)
        assert entry["version"] in folder
        assert "LICENSE" in entry["sha256"]
        files = {p.name for p in (ASSETS / folder).iterdir()}
        assert files == set(entry["sha256"]), folder  # nothing unrecorded is served
        for name, digest in entry["sha256"].items():
            assert hashlib.sha256((ASSETS / folder / name).read_bytes()).hexdigest() == digest


# --- in a real browser, offline --------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("kaoping-docs-page")) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install -y chromium)"
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def test_the_docs_page_works_from_this_origin_alone(server: Server, browser: Browser) -> None:
    page = browser.new_page()
    requests: list[str] = []
    refused: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text
            and "script" in m.text else None)
    page.goto(f"{server.url}/schema")
    page.wait_for_selector(".opblock", state="attached", timeout=90_000)  # rendered
    assert page.locator(".opblock").count() > 40
    assert [u for u in requests if urlsplit(u).netloc != urlsplit(server.url).netloc] == []
    assert refused == []
    page.close()


def test_assets_are_in_the_package() -> None:
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '"api" = ["assets/*", "assets/*/*"]' in pyproject
