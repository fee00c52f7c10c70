"""GET /vote/{session} — the ballot page a printed QR code opens.

Plain, accessible HTML for a phone: no login, no third-party assets, no inline script or
style (api/assets/ballot.js and ballot.css, under a CSP without 'unsafe-inline'). The
credential travels in the URL fragment (``#c=…``), which browsers never send to the server, so
it appears in no request line or log; the script posts it with the answers to the casting
endpoint and shows the tracker.
"""

from __future__ import annotations

import html
from functools import partial
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath

from api.auth import anonymous_guard
from api.pages import PAGE_CSP, asset_url
from api.routes.sessions import public_view
from domain.ballots import EvaluationSession

TEXT = {
    "zh": {"title": "测评", "submit": "提交", "missing": "未找到凭证：请扫描纸质凭条上的二维码。",
           "done": "已提交。您的回执（追踪码）：", "position": "日志位置", "check": (
               "会议结束后，可在公告板上核对追踪码，并用包含证明对照签名检查点验证。"),
           "error": "提交失败：", "closed": "本次测评当前不接受投票。"},
    "en": {"title": "Evaluation", "submit": "Submit", "missing": (
               "No credential found: scan the QR code on your paper slip."),
           "done": "Submitted. Your receipt (tracker):", "position": "log position", "check": (
               "After the session closes, find your tracker on the board and verify its "
               "inclusion proof against a signed checkpoint."),
           "error": "Not accepted: ", "closed": "This session is not accepting ballots."},
}

def _page(session: EvaluationSession, lang: str) -> str:
    t, d = TEXT[lang], session.definition
    e = html.escape
    rows = []
    for subject in d.subjects:
        fields = []
        for item in d.items:
            choices = "".join(
                f'<label><input type="radio" required name="{e(subject)}|{e(item.code)}" '
                f'data-subject="{e(subject)}" data-item="{e(item.code)}" value="{e(o.code)}"> '
                f"{e(o.label)}</label>" for o in d.options)
            fields.append(f"<fieldset><legend>{e(item.label)}</legend>{choices}</fieldset>")
        rows.append(f"<section><h2>{e(subject)}</h2>{''.join(fields)}</section>")
    closed = "" if session.state.value == "open" else f"<p role='alert'>{e(t['closed'])}</p>"
    return f"""<!doctype html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(d.title)} · {e(t['title'])}</title>
<link rel="stylesheet" href="{asset_url('ballot.css')}"></head>
<body><main><h1>{e(d.title)}</h1>{closed}
<form id="ballot" action="/api/v1/sessions/{e(d.code)}/ballots" data-missing="{e(t['missing'])}"
 data-done="{e(t['done'])}" data-position="{e(t['position'])}" data-check="{e(t['check'])}"
 data-error="{e(t['error'])}">{''.join(rows)}
<button type="submit">{e(t['submit'])}</button></form>
<div id="result" aria-live="polite"></div></main>
<script src="{asset_url('ballot.js')}"></script></body></html>"""


@get("/vote/{code:str}", opt={"public": True}, include_in_schema=False, media_type="text/html",
     guards=[anonymous_guard])
async def ballot_page(request: Request[Any, Any, Any], state: State,
                      code: FromPath[str]) -> Response[str]:
    lang = "en" if request.headers.get("accept-language", "").lower().startswith("en") else "zh"
    page = await public_view(state, code, f"page-{lang}", partial(_page, lang=lang))
    return Response(page, media_type="text/html", headers={
        "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": PAGE_CSP})
