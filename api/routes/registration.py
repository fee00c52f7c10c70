"""/api/v1/cycles/{year}/cadres/{code}/registration.pdf — the 考核登记表 of one cadre.

The annual appraisal registration form for the 干部档案 (seed 成效 四), as a PDF rendered from the
published results in force (service/registration.py). Read as a cadre's card is read: the cadre
itself once published, the organizer, the committee, supervisors, and investigators whose open
case covers the cadre (service/audience.py); never the public."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from api.auth import SECURITY, optional_principal
from api.openapi import problems
from domain.errors import NotFound
from service.registration import registration_form, render

PDF = "application/pdf"


@get("/cycles/{year:int}/cadres/{code:str}/registration.pdf", security=SECURITY,
     tags=["use of results"], summary="A cadre's 考核登记表 (PDF) for the personnel file",
     responses={**problems(401, 403, 404, 409), 200: ResponseSpec(
         bytes, description="The form as a one-page PDF", media_type=PDF,
         generate_examples=False)})
async def registration_pdf(request: Request[Any, Any, Any], year: FromPath[int],
                           code: FromPath[str]) -> Response[bytes]:
    """The cadre's annual appraisal registration form (考核登记表) for the 干部档案: name,
    unit, post, year, 本人总结 and 评语 where the cycle holds them, the published grade, and
    the trail to the evidence — the results version in force and its fingerprint, the ledger
    leaf of the event that made that version and the first signed checkpoint covering it.
    Chinese text; the same published results give the same bytes. From publication on (409
    ``registration.published`` before); readers as for the cadre's card."""
    services = request.app.state.services
    cycle = await to_thread.run_sync(services.evaluation.cycle, year)
    subject = f"cadre:{code}"
    if subject not in {e.subject for e in cycle.roster}:  # the roster itself is public
        msg = f"cadre {code} is not on the roster of cycle {year}"
        raise NotFound(msg, rule="registration.cadre", field="code")
    await to_thread.run_sync(services.cards.check, optional_principal(request),
                             "registration", cycle, subject, "detail")
    form = await to_thread.run_sync(registration_form, services, year, code)
    body = await to_thread.run_sync(render, form)
    return Response(body, media_type=PDF, headers={
        "Content-Disposition": f'inline; filename="kaoping-{year}-{code}-registration.pdf"',
        "Cache-Control": "private, no-store"})
