"""The landing page at /: links that work, and nothing that needs 'unsafe-inline' or another
origin."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from litestar.testing import TestClient

from service.runtime import Services


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _parse(text: str) -> list[tuple[str, dict[str, str | None]]]:
    page = _Page()
    page.feed(text)
    return page.tags


def test_the_landing_page_links_the_reference_health_and_events(
        client: TestClient[Any], services: Services, organizer: dict[str, str]) -> None:
    unit = {"code": "HOME-1", "name": "首页", "kind": "department", "category": "vertical"}
    assert client.post("/api/v1/units", json=unit, headers=organizer).status_code == 201
    services.signer.sign(services.db, services.clock.now())  # the periodic signer's work
    resp = client.get("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    links = [str(a["href"]) for tag, a in _parse(resp.text) if tag == "a"]
    for needed in ("/schema", "/health", "/ready", "/api/v1/events"):
        assert needed in links
    for href in links:
        followed = client.get(href, headers=organizer)
        assert followed.status_code == 200, (href, followed.status_code)


def test_the_landing_page_needs_no_inline_code_and_no_other_origin(
        client: TestClient[Any]) -> None:
    resp = client.get("/")
    csp = {d.split()[0]: d.split()[1:] for d in
           resp.headers["content-security-policy"].split(";") if d.strip()}
    assert csp["default-src"] == ["'none'"]
    assert not [v for values in csp.values() for v in values
                if "unsafe" in v or v.startswith(("http", "*", "data:"))]
    tags = _parse(resp.text)
    assert not [t for t, _ in tags if t in ("script", "style", "iframe", "img")]
    assert not [t for t, a in tags if "style" in a or any(k.startswith("on") for k in a)]
    for tag, attrs in tags:
        for key in ("href", "src"):
            if attrs.get(key):
                parts = urlsplit(str(attrs[key]))
                assert not parts.scheme and not parts.netloc, (tag, attrs)
    sheets = [str(a["href"]) for t, a in tags if t == "link" and a.get("rel") == "stylesheet"]
    assert sheets
    for sheet in sheets:
        css = client.get(sheet)
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert "url(" not in css.text and "@import" not in css.text
