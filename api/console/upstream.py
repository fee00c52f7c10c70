"""The console reads through the API, in-process, as the signed-in person.

Each read is an ASGI call into this same app with a bearer token just issued for the session's
principal (role and identity as verified at sign-in). The API's guards, audiences, card and
case gates and access record apply unchanged: the console has no read path of its own, so it
can never show more than the person's own API call would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from litestar import Request

    from api.console.session import Session
    from service.runtime import Services

INTERNAL = "http://console.internal"


@dataclass
class Answer:
    status: int
    body: Any  # decoded JSON, or bytes for other media types
    headers: httpx.Headers

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def rule(self) -> str:
        return str(self.body.get("rule", "")) if isinstance(self.body, dict) else ""

    @property
    def detail(self) -> str:
        return str(self.body.get("detail", "")) if isinstance(self.body, dict) else ""


async def api_get(request: Request[Any, Any, Any], session: Session, path: str,
                  params: dict[str, str] | None = None, *, raw: bool = False) -> Answer:
    """GET ``path`` as the session's principal; ``raw``: keep a successful body as bytes."""
    services: Services = request.app.state.services
    token = services.tokens.issue(role=session.role, acts_as=session.acts_as, name=session.name,
                                  now=services.clock.now())
    transport = httpx.ASGITransport(app=request.app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=INTERNAL) as client:
        resp = await client.get(path, params=params or {},
                                headers={"Authorization": f"Bearer {token}"})
    media = resp.headers.get("content-type", "")
    keep = raw and resp.is_success
    body: Any = resp.json() if "json" in media and not keep else resp.content
    return Answer(resp.status_code, body, resp.headers)


PAGE = 1000  # the largest page the API's lists give


async def api_get_items(request: Request[Any, Any, Any], session: Session, path: str,
                        params: dict[str, str] | None = None) -> Answer:
    """GET a paginated list whole: every page's ``items`` in one answer, following
    ``next_cursor`` (a page-one view of a city over 1,000 subjects left the rest out)."""
    page_size = PAGE
    first = await api_get(request, session, path, {**(params or {}), "limit": str(page_size)})
    if not first.ok:
        return first
    body = dict(first.body)
    items, cursor = list(body["items"]), body.get("next_cursor")
    while cursor:
        more = await api_get(request, session, path,
                             {**(params or {}), "limit": str(page_size), "cursor": cursor})
        if not more.ok:
            return more
        items += more.body["items"]
        cursor = more.body.get("next_cursor")
    body["items"], body["next_cursor"] = items, None
    return Answer(first.status, body, first.headers)
