"""What every console page shares: the signed-in session, rendering, refusals, redirects."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from anyio import to_thread
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request, Response
from litestar.response import Redirect

from api.console.session import COOKIE, Keys, Session, csrf_token, keys_for, unseal
from api.pages import asset_url
from service.console_sessions import signed_out
from service.principals import Role

if TYPE_CHECKING:
    from api.console.upstream import Answer
    from service.runtime import Services

TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(default=True, default_for_string=True),
                        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def local_time(value: str | None, zone: str) -> str:
    """An ISO time with zone, as the wall clock of ``zone`` (KAOPING_TIMEZONE) reads it."""
    try:
        at = datetime.fromisoformat(value or "")
    except ValueError:
        return value or ""
    if at.tzinfo is None:
        return value or ""
    return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


TEMPLATES.filters["local"] = local_time
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
ROLE_LABELS = {
    Role.ORGANIZER: "组织部门 organizer", Role.COMMITTEE: "党委 committee",
    Role.SUPERVISOR: "监督 supervisor", Role.INVESTIGATOR: "调查 investigator",
    Role.INTAKE: "受理 intake", Role.LEADER: "领导 leader",
    Role.DEPARTMENT: "职能部门 department", Role.ASSESSMENT_TEAM: "考核组 assessment team",
}


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def services_of(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


def console_keys(request: Request[Any, Any, Any]) -> Keys:
    return keys_for(services_of(request).settings.console_key_path)


async def current_session(request: Request[Any, Any, Any]) -> Session | None:
    """The cookie's session, unless it is altered, expired or signed out."""
    services = services_of(request)
    session = unseal(console_keys(request), request.cookies.get(COOKIE), services.clock.now())
    if session is None or await to_thread.run_sync(signed_out, services.db, session.sid):
        return None
    return session


async def need_session(request: Request[Any, Any, Any]) -> Session:
    """The signed-in session; anyone else is sent to the sign-in page (and back after)."""
    session = await current_session(request)
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    return session


def to_sign_in(_: Request[Any, Any, Any], exc: SignInRequired) -> Response[Any]:
    return Redirect(f"/console/sign-in?next={quote(exc.next_path, safe='/')}",
                    status_code=303, headers=HEADERS)


def render(request: Request[Any, Any, Any], template: str, session: Session | None,
           status: int = 200, **context: Any) -> Response[str]:
    keys = console_keys(request)
    context.setdefault("csrf", csrf_token(keys, session.sid) if session else "")
    page = TEMPLATES.get_template(template).render(
        session=session,
        role_label=ROLE_LABELS.get(session.role, session.role.value) if session else "",
        assets={"css": asset_url("console.css"), "js": asset_url("console.js"),
                "icon": asset_url("console-icon.svg"),
                "echarts": "/assets/echarts-6.1.0/echarts.common.min.js"},
        status_code=status, tz=services_of(request).settings.timezone, **context)
    return Response(page, status_code=status, media_type="text/html", headers=HEADERS)


def refused(request: Request[Any, Any, Any], session: Session, answer: Answer,
            what: str) -> Response[str]:
    """The API's refusal, shown as it is: the same status, rule and field."""
    body = answer.body if isinstance(answer.body, dict) else {}
    return render(request, "refused.html", session, status=answer.status, what=what,
                  problem_title=str(body.get("title", "")), detail=answer.detail,
                  rule=answer.rule, field=str(body.get("field") or ""))
