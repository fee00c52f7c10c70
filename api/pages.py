"""The HTML pages' assets: served from this package under /assets/, never from a CDN.

The API documentation (Swagger UI, vendored from the npm registry: api/assets/VENDORED.json
records the package, version, integrity, licence and each file's sha256) and the ballot page's
script and style are files of this package. Pages load them from /assets/ only, under a CSP
without 'unsafe-inline'; the assets are cached for a year (their URLs change with their
content: a versioned directory, or ``?v=`` and the file's hash).
"""

from __future__ import annotations

import hashlib
import html
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

if TYPE_CHECKING:
    from litestar import Request, Router

ASSETS = Path(__file__).parent / "assets"
SWAGGER = "swagger-ui-5.36.0"
# Pages: everything from this origin only, nothing inline, not framed, forms post here only.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
YEAR_S = 365 * 24 * 3600


@cache
def asset_url(name: str) -> str:
    """The URL of one of our own assets, changing whenever its content does."""
    digest = hashlib.sha256((ASSETS / name).read_bytes()).hexdigest()[:12]
    return f"/assets/{name}?v={digest}"


def assets_router() -> Router:
    return create_static_files_router(
        path="/assets", directories=[ASSETS], opt={"public": True}, include_in_schema=False,
        cache_control=CacheControlHeader(public=True, max_age=YEAR_S, immutable=True),
        send_as_attachment=False)


class DocsPage(SwaggerRenderPlugin):
    """Swagger UI from /assets/: the page has no inline script or style (the CSP forbids them);
    swagger-init.js reads the document's URL from its own tag."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(str(openapi_schema["info"]["title"]))
        spec = html.escape(f"{request.app.openapi_config.path}/openapi.json")  # type: ignore[union-attr]
        base = f"/assets/{SWAGGER}"
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{base}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{base}/swagger-ui-bundle.js"></script>
<script src="{asset_url('swagger-init.js')}" data-spec="{spec}"></script>
</body></html>""".encode()
