"""The audit console under /console: server-rendered pages (Jinja2), zh-CN first, read through
the API as the signed-in person (api/console/upstream.py).

``PAGES`` declares every console page and who may open it, as api/readers.py does for the API:
``sign-in`` pages are open to anyone (throttled as anonymous); every other page needs a console
session, and what it then shows is exactly what the person's own API call returns — refusals
included, with the API's status and rule. tests/e2e/test_console.py sweeps this table.
"""

from __future__ import annotations

from typing import Literal

from litestar import Router

from api.console.case_pages import access_record, case_file, case_list
from api.console.cycle_pages import console_home, dashboard, go_to_cycle, group_ranking
from api.console.signin import sign_in, sign_in_page, sign_out
from api.console.subject_pages import evidence, evidence_check, replay, score_card
from api.console.web import SignInRequired, to_sign_in

PageAudience = Literal["anyone", "signed-in"]
C = "/console/cycles/{year}"
PAGES: dict[str, tuple[PageAudience, str | None]] = {
    # page: (who may open it, the API read whose audience then applies)
    "/console/sign-in": ("anyone", None),
    "/console": ("signed-in", None),
    "/console/cycles": ("signed-in", None),
    C: ("signed-in", "/api/v1/cycles/{year}"),
    C + "/groups/{group}": ("signed-in", "/api/v1/cycles/{year}/results"),
    C + "/subjects/{subject}": ("signed-in", "/api/v1/cycles/{year}/subjects/{subject}/explain"),
    C + "/subjects/{subject}/replay": (
        "signed-in", "/api/v1/cycles/{year}/subjects/{subject}/explain"),
    C + "/subjects/{subject}/evidence": (
        "signed-in", "/api/v1/cycles/{year}/subjects/{subject}/evidence"),
    C + "/subjects/{subject}/evidence/check": (
        "signed-in", "/api/v1/cycles/{year}/subjects/{subject}/evidence"),
    "/console/cases": ("signed-in", "/api/v1/cases"),
    "/console/cases/{case_id}": ("signed-in", "/api/v1/cases/{case_id}"),
    "/console/access": ("signed-in", "/api/v1/audit/access"),
}


def console_router() -> Router:
    return Router(path="/console", include_in_schema=False,
                  exception_handlers={SignInRequired: to_sign_in},
                  route_handlers=[sign_in_page, sign_in, sign_out, console_home, go_to_cycle,
                                  dashboard, group_ranking, score_card, replay, evidence,
                                  evidence_check,
                                  case_list, case_file, access_record])
