"""GET /vote/{session} — the ballot page a printed QR code opens; /vote/{session}/board, its board.

Plain, accessible HTML for a phone: no login, no third-party assets, no inline script or
style (api/assets/ballot.js and ballot.css, under a CSP without 'unsafe-inline'). The
credential travels in the URL fragment (``#c=…``), which browsers never send to the server, so
it appears in no request line or log; the script posts it with the answers to the casting
endpoint and shows the tracker.

Subjects are shown by their names in the year's roster (service/session_files.py), their codes
small beside them. The rules the tally applies (domain/ballots.py ``ballot_problem``) are
stated in words and checked in the browser before anything is sent: the page never submits a
ballot the tally would count invalid without saying why. Every message on the Chinese page is
Chinese: the server's refusals are shown by their rule, never by their English text.
"""

from __future__ import annotations

import html
import json
from functools import partial
from typing import Any

from anyio import to_thread
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath

from api.auth import anonymous_guard
from api.pages import PAGE_CSP, asset_url
from api.routes.sessions import public_view
from api.vote_text import JS_TEXT, TEXT, board_body, rules_in_words, state_text, subject_detail
from domain.ballots import EvaluationSession, SessionState, top_limit
from service.session_files import SubjectNames

HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
           "Content-Security-Policy": PAGE_CSP}
e = html.escape


def _lang(request: Request[Any, Any, Any]) -> str:
    return "en" if request.headers.get("accept-language", "").lower().startswith("en") else "zh"


def _shell(lang: str, title: str, body: str, script: str) -> str:
    return f"""<!doctype html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<link rel="stylesheet" href="{asset_url('ballot.css')}"></head>
<body><main>{body}</main>
<script src="{asset_url(script)}"></script></body></html>"""


def _config(session: EvaluationSession, names: SubjectNames, lang: str) -> str:
    """What ballot.js checks and says, as a data attribute (the CSP allows no inline script)."""
    d, rules = session.definition, session.definition.rules
    limit = top_limit(rules, len(d.subjects))
    top = next((o for o in d.options if o.code == rules.top_option), None)
    identical = (rules.identical_invalid and len(d.subjects) >= rules.identical_min_subjects
                 and len(d.subjects) * len(d.items) > 1)
    config = {
        "session": d.code, "board": f"/vote/{d.code}/board",
        "subjects": {s: names.of(s).name for s in d.subjects},
        "items": {i.code: i.label for i in d.items},
        "options": {o.code: o.label for o in d.options},
        "top": None if top is None or limit is None else {
            "option": top.code, "label": top.label, "limit": limit},
        "identical": identical, "text": JS_TEXT[lang]}
    return e(json.dumps(config, ensure_ascii=False, separators=(",", ":")))


def _subject(session: EvaluationSession, names: SubjectNames, subject: str, lang: str) -> str:
    d, name = session.definition, names.of(subject)
    fields = []
    for item in d.items:
        choices = "".join(
            f'<label><input type="radio" name="{e(subject)}|{e(item.code)}" '
            f'data-subject="{e(subject)}" data-item="{e(item.code)}" value="{e(o.code)}"> '
            f"{e(o.label)}</label>" for o in d.options)
        fields.append(f'<fieldset data-subject="{e(subject)}" data-item="{e(item.code)}">'
                      f"<legend>{e(item.label)}</legend>{choices}</fieldset>")
    detail = subject_detail(name, lang)
    return (f'<section class="subject" data-subject="{e(subject)}"><h2>{e(name.name)}</h2>'
            f'<p class="who">{e(detail)} <code class="code">{e(subject)}</code></p>'
            f"{''.join(fields)}</section>")


def _page(session: EvaluationSession, names: SubjectNames, lang: str) -> str:
    t, d = TEXT[lang], session.definition
    board = f'<a href="/vote/{e(d.code)}/board">{e(t["board"])}</a>'
    head = (f'<h1>{e(d.title)}</h1><p class="meta">{e(t["meta"].format(year=d.year))} · '
            f'<code class="code">{e(d.code)}</code></p>')
    if session.state != SessionState.OPEN:  # no form at all: only the state and the board
        body = (f'{head}<p id="state" role="status">{e(state_text(session.state, lang))}</p>'
                f'<p class="board">{board}</p>')
        return _shell(lang, f"{d.title} · {t['title']}", body, "ballot.js")
    rules = "".join(f"<li>{e(r)}</li>" for r in rules_in_words(d, lang))
    subjects = "".join(_subject(session, names, s, lang) for s in d.subjects)
    body = f"""{head}<p class="board">{board}</p>
<section id="rules" aria-labelledby="rules-h"><h2 id="rules-h">{e(t['rules'])}</h2>
<ul>{rules}</ul></section>
<form id="ballot" action="/api/v1/sessions/{e(d.code)}/ballots" novalidate
 data-config="{_config(session, names, lang)}">{subjects}
<div class="submit"><p id="check" role="status" aria-live="polite"></p>
<p id="problems" role="alert" hidden></p>
<button type="submit" aria-describedby="check problems">{e(t['submit'])}</button></div></form>
<div id="result" aria-live="polite"></div>"""
    return _shell(lang, f"{d.title} · {t['title']}", body, "ballot.js")


async def _names(state: State, code: str) -> SubjectNames:
    year = await public_view(state, code, "year", lambda s: s.definition.year)
    cached: SubjectNames | None = state.subject_names.cached(year)
    if cached is not None:
        return cached
    loaded: SubjectNames = await to_thread.run_sync(state.subject_names.load, year)
    return loaded


@get("/vote/{code:str}", opt={"public": True}, include_in_schema=False, media_type="text/html",
     guards=[anonymous_guard])
async def ballot_page(request: Request[Any, Any, Any], state: State,
                      code: FromPath[str]) -> Response[str]:
    lang, names = _lang(request), await _names(state, code)
    page = await public_view(state, code, f"page-{lang}-{names.digest}",
                             partial(_page, names=names, lang=lang))
    return Response(page, media_type="text/html", headers=HEADERS)


def _board(session: EvaluationSession, lang: str) -> str:
    t, d = TEXT[lang], session.definition
    body = (f'<h1>{e(d.title)}</h1><p class="meta">{e(t["board_title"])} · '
            f'<code class="code">{e(d.code)}</code></p>{board_body(session, lang)}'
            f'<p><a href="/vote/{e(d.code)}">{e(t["back"])}</a> · '
            f'<a href="/api/v1/sessions/{e(d.code)}/board">{e(t["json"])}</a></p>')
    return _shell(lang, f"{d.title} · {t['board_title']}", body, "board.js")


@get("/vote/{code:str}/board", opt={"public": True}, include_in_schema=False,
     media_type="text/html", guards=[anonymous_guard])
async def board_page(request: Request[Any, Any, Any], state: State,
                     code: FromPath[str]) -> Response[str]:
    lang = _lang(request)
    page = await public_view(state, code, f"board-{lang}", partial(_board, lang=lang))
    return Response(page, media_type="text/html", headers=HEADERS)
