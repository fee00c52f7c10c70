"""/console/sign-in and /console/sign-out: a bearer token in, a sealed session cookie out."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, TypeVar

import msgspec
from anyio import to_thread
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import QueryParameter
from litestar.response import Redirect

from api.auth import anonymous_guard
from api.console.session import (
    COOKIE,
    PATH,
    PRE_COOKIE,
    csrf_ok,
    csrf_token,
    open_session,
    seal,
)
from api.console.web import HEADERS, console_keys, current_session, render, services_of
from domain.errors import Forbidden, InvalidInput
from domain.text import text
from service.console_sessions import record_sign_out
from service.principals import PrincipalError

T = TypeVar("T")


class SignInForm(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    csrf: Annotated[str, text(max_length=100)]
    token: Annotated[str, text(max_length=8192)] = ""
    next: Annotated[str, text(max_length=2000)] = "/console"


class SignOutForm(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    csrf: Annotated[str, text(max_length=100)] = ""


async def _decode(request: Request[Any, Any, Any], kind: type[T]) -> T:
    """The form's fields, strictly: only the known ones, each of them text (domain/text.py)."""
    form = await request.form()
    try:
        return msgspec.convert(dict(form.items()), kind, strict=True)
    except msgspec.ValidationError as exc:
        msg = f"the form is not what this page sends: {exc}"
        raise InvalidInput(msg, rule="console.form", field="form") from exc


def _safe_next(target: str | None) -> str:
    """Only a console path of this site (never //elsewhere or a scheme)."""
    if target and target.startswith("/console") and not target.startswith("//") \
            and "\\" not in target:
        return target
    return "/console"


def _cookie(request: Request[Any, Any, Any], key: str, value: str, max_age: int) -> Cookie:
    return Cookie(key=key, value=value, path=PATH, httponly=True, samesite="strict",
                  secure=request.url.scheme == "https", max_age=max_age)


def _form(request: Request[Any, Any, Any], next_path: str, error: str = "",
          status: int = 200) -> Response[str]:
    pre = secrets.token_urlsafe(16)
    page = render(request, "sign_in.html", None, status=status, error=error,
                  next=_safe_next(next_path), csrf=csrf_token(console_keys(request), pre))
    page.set_cookie(_cookie(request, PRE_COOKIE, pre, 3600))
    return page


@get("/sign-in", guards=[anonymous_guard], include_in_schema=False)
async def sign_in_page(request: Request[Any, Any, Any],
                       next: Annotated[str | None, QueryParameter()] = None,  # noqa: A002
                       ) -> Response[Any]:
    if await current_session(request) is not None:
        return Redirect(_safe_next(next), status_code=303, headers=HEADERS)
    return _form(request, next or "/console")


@post("/sign-in", guards=[anonymous_guard], include_in_schema=False, status_code=303)
async def sign_in(request: Request[Any, Any, Any]) -> Response[Any]:
    data = await _decode(request, SignInForm)
    keys = console_keys(request)
    target = _safe_next(data.next)
    if not csrf_ok(keys, request.cookies.get(PRE_COOKIE), data.csrf):
        msg = "the sign-in form expired or came from another site; reload it (CSRF)"
        raise Forbidden(msg, rule="console.csrf", field="csrf")
    services = services_of(request)
    now = services.clock.now()
    token = data.token.strip()
    try:
        principal = services.tokens.verify(token, now=now) if token else None
    except PrincipalError:
        principal = None
    if principal is None or principal.acts_as is None:
        return _form(request, target, status=401,
                     error="令牌无效或已过期，请向组织部门重新申请。"
                           "The token is invalid or expired.")
    session = open_session(principal, now, services.settings.console_session_seconds)
    answer = Redirect(target, status_code=303, headers=HEADERS)
    answer.set_cookie(_cookie(request, COOKIE, seal(keys, session),
                              services.settings.console_session_seconds))
    answer.delete_cookie(PRE_COOKIE, path=PATH)
    return answer


@post("/sign-out", include_in_schema=False, status_code=303)
async def sign_out(request: Request[Any, Any, Any]) -> Response[Any]:
    data = await _decode(request, SignOutForm)
    session = await current_session(request)
    if session is not None and not csrf_ok(console_keys(request), session.sid, data.csrf):
        msg = "the sign-out form came from another page or site (CSRF)"
        raise Forbidden(msg, rule="console.csrf", field="csrf")
    if session is not None:  # any copy of the cookie ends with it
        services = services_of(request)
        await to_thread.run_sync(record_sign_out, services.db, session.sid, session.expires,
                                 services.clock.now())
    answer = Redirect("/console/sign-in", status_code=303, headers=HEADERS)
    answer.delete_cookie(COOKIE, path=PATH)
    return answer
