"""The investigator's case desk and the supervisor's access record, read through the API."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Request, Response, get
from litestar.params import FromPath, QueryParameter

from api.console.upstream import api_get
from api.console.web import need_session, refused, render


@get("/cases", include_in_schema=False)
async def case_list(request: Request[Any, Any, Any]) -> Response[Any]:
    session = await need_session(request)
    cases = await api_get(request, session, "/api/v1/cases", {"limit": "500"})
    if not cases.ok:
        return refused(request, session, cases, "案件 cases")
    return render(request, "cases.html", session, cases=cases.body["items"])


@get("/cases/{case_id:uuid}", include_in_schema=False)
async def case_file(request: Request[Any, Any, Any], case_id: FromPath[UUID]) -> Response[Any]:
    """The case file, and links to the card of each subject it covers: those reads go through
    the API's case gate (and the access record) like any other."""
    session = await need_session(request)
    case = await api_get(request, session, f"/api/v1/cases/{case_id}")
    if not case.ok:
        return refused(request, session, case, "案件 case")
    return render(request, "case.html", session, case=case.body)


@get("/access", include_in_schema=False)
async def access_record(request: Request[Any, Any, Any],
                        subject: Annotated[str | None, QueryParameter(max_length=80)] = None,
                        after: Annotated[int, QueryParameter(ge=-1)] = -1) -> Response[Any]:
    session = await need_session(request)
    params = {"after": str(after), "limit": "200", **({"subject": subject} if subject else {})}
    rows = await api_get(request, session, "/api/v1/audit/access", params)
    if not rows.ok:
        return refused(request, session, rows, "调阅记录 access record")
    return render(request, "access.html", session, rows=rows.body, subject=subject or "",
                  next_after=rows.body[-1]["position"] if len(rows.body) == 200 else None)
