"""GET / — a landing page for whoever opens the server in a browser: where the API reference,
the health checks and the event feed are. Static HTML and one stylesheet from this server: no
script, no inline style, nothing from another origin (its CSP allows exactly that)."""

from __future__ import annotations

from litestar import Response, get

CSP = ("default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer"}

LINKS = (
    ("API reference 接口文档", "/schema", "OpenAPI 3.1, rendered by a vendored, pinned "
     "Swagger UI served from this server"),
    ("OpenAPI document", "/schema/openapi.json", "the same, as JSON: nothing from outside"),
    ("Audit console 审计控制台", "/console",
     "score cards, history, replay with proofs checked in the browser, the case desk "
     "(sign in with a person's token)"),
    ("Health 存活", "/health", "the process answers"),
    ("Readiness 就绪", "/ready", "store, migrations, read-model lag, the demo's loading"),
    ("Event catalogue 事件目录", "/api/v1/events/catalogue",
     "every event type other systems receive, with its JSON Schema"),
    ("Event feed 事件流", "/api/v1/events",
     "CloudEvents in log order (an API key or token; live: /api/v1/events/stream)"),
    ("Ledger checkpoint 检查点", "/api/v1/ledger/checkpoint",
     "the signed head of the tamper-evident log"),
)

STYLE = """body{font:16px/1.5 system-ui,sans-serif;margin:0 auto;max-width:44rem;padding:1rem}
dt{margin-top:.75rem}dd{margin-left:0;color:#444}code{background:#f3f3f3;padding:0 .2rem}
"""


def _page() -> str:
    items = "".join(f'<dt><a href="{href}">{label}</a> <code>{href}</code></dt><dd>{what}</dd>'
                    for label, href, what in LINKS)
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kaoping 考评</title><link rel="stylesheet" href="/home.css"></head>
<body><main><h1>Kaoping 考评</h1>
<p>干部综合考核评价 — an event-sourced, tamper-evident evaluation backend.
Integrating a system? Start with the API reference and <code>docs/api.md</code>
in the repository.</p>
<dl>{items}</dl></main></body></html>"""


PAGE = _page()


@get("/", opt={"public": True}, include_in_schema=False, media_type="text/html")
async def home() -> Response[str]:
    return Response(PAGE, media_type="text/html", headers=HEADERS)


@get("/home.css", opt={"public": True}, include_in_schema=False, media_type="text/css")
async def home_css() -> Response[str]:
    return Response(STYLE, media_type="text/css", headers={
        "Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})
