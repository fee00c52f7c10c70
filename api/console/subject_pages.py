"""A subject's pages: the score card as an explain tree with its history chart, as-of and diff;
the event replay with browser-checked inclusion proofs; the evidence bundle."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from litestar import Request, Response, get
from litestar.params import FromPath, QueryParameter

from api.console.cycle_pages import STEPS
from api.console.upstream import api_get
from api.console.web import HEADERS, local_time, need_session, refused, render, services_of
from domain.scheme import Component
from service.verify import VerifyError, verify_bundle

AsOf = Annotated[str | None, QueryParameter(max_length=40, pattern=r"^[0-9A-Za-z:+.\-]+$")]
PARTS = {c.value: label for c, label in STEPS.items()}


def _api(year: int, subject: str) -> str:
    return f"/api/v1/cycles/{year}/subjects/{subject}"


def _tree(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The composite's branches: each component (weight, value) with the inputs that feed it,
    then the other parts (vetoes, adjustments, grading, appeals) with theirs."""
    result = card["result"]
    branches = []
    parts = [c.value for c in Component if c.value in card["weights"]]
    parts += sorted({i["part"] for i in card["inputs"]} - set(parts))
    for part in parts:
        branches.append({
            "part": part, "label": PARTS.get(part, part), "weight": card["weights"].get(part),
            "value": result["components"].get(part),
            "missing": part in result["missing"],
            "inputs": [i for i in card["inputs"] if i["part"] == part]})
    return branches


def _points(history: list[dict[str, Any]], zone: str) -> list[dict[str, Any]]:
    return [{"position": c["position"], "time": local_time(c["time"], zone), "topic": c["topic"],
             "composite": c["changed"]["composite"][1], "rank": (c["changed"].get("rank")
                                                                 or [None, None])[1]}
            for c in history if "composite" in c["changed"]]


@get("/cycles/{year:int}/subjects/{subject:str}", include_in_schema=False)
async def score_card(request: Request[Any, Any, Any], year: FromPath[int], subject: FromPath[str],
                     as_of: AsOf = None,
                     diff_from: Annotated[str | None, QueryParameter(
                         name="from", max_length=40)] = None,
                     diff_to: Annotated[str | None, QueryParameter(
                         name="to", max_length=40)] = None) -> Response[Any]:
    session = await need_session(request)
    card = await api_get(request, session, _api(year, subject) + "/explain",
                         {"as_of": as_of} if as_of else None)
    if not card.ok:
        return refused(request, session, card, f"{subject} 评分卡 score card")
    history = await api_get(request, session, _api(year, subject) + "/history")
    diff = None
    if diff_from and diff_to:
        answer = await api_get(request, session, _api(year, subject) + "/diff",
                               {"from": diff_from, "to": diff_to})
        diff = answer.body if answer.ok else {"refused": answer.rule, "detail": answer.detail}
    zone = services_of(request).settings.timezone
    points = _points(history.body, zone) if history.ok else []
    published = card.body.get("published")
    named = [("现在 now", "")]
    announcement = await api_get(request, session, f"/api/v1/cycles/{year}/announcement")
    size = int(announcement.body["checkpoint"].split("\n")[1]) if announcement.ok else 0
    if size:  # the checkpoint it was issued at: the log up to that checkpoint's last leaf
        named.append(("年终公告 announcement", str(size - 1)))
    cycle = await api_get(request, session, f"/api/v1/cycles/{year}")
    if cycle.ok and cycle.body.get("phase") in ("sealed", "published"):
        named.append(("封存 seal", "seal"))  # the API finds the seal's position by its name
    if published:
        named.append(("公布 publication", str(published["position"])))
    return render(request, "card.html", session, year=year, subject=subject, card=card.body,
                  tree=_tree(card.body), history=history.body if history.ok else [],
                  points=points, as_of=as_of or "",
                  named=named, diff=diff, diff_from=diff_from or "", diff_to=diff_to or "")


@get("/cycles/{year:int}/subjects/{subject:str}/replay", include_in_schema=False)
async def replay(request: Request[Any, Any, Any], year: FromPath[int],
                 subject: FromPath[str]) -> Response[Any]:
    session = await need_session(request)
    card = await api_get(request, session, _api(year, subject) + "/explain")
    if not card.ok:
        return refused(request, session, card, f"{subject} 事件回放 replay")
    history = await api_get(request, session, _api(year, subject) + "/history")
    changed = {c["position"]: c["changed"] for c in history.body} if history.ok else {}
    steps = sorted(card.body["inputs"], key=lambda i: i["position"])
    return render(request, "replay.html", session, year=year, subject=subject, steps=[
        {**s, "changed": changed.get(s["position"], {}),
         "reason": s["facts"].get("reason") or s["facts"].get("basis") or ""}
        for s in steps])


@get("/cycles/{year:int}/subjects/{subject:str}/evidence", include_in_schema=False)
async def evidence(request: Request[Any, Any, Any], year: FromPath[int],
                   subject: FromPath[str]) -> Response[Any]:
    session = await need_session(request)
    bundle = await api_get(request, session, _api(year, subject) + "/evidence", raw=True)
    if not bundle.ok:
        return refused(request, session, bundle, f"{subject} 证据包 evidence bundle")
    return Response(bundle.body, media_type="application/json", headers={
        **HEADERS, "Content-Disposition": bundle.headers["content-disposition"]})


@get("/cycles/{year:int}/subjects/{subject:str}/evidence/check", include_in_schema=False)
async def evidence_check(request: Request[Any, Any, Any], year: FromPath[int],
                         subject: FromPath[str]) -> Response[Any]:
    """The bundle the person may download, checked by the offline verifier (service/verify.py,
    what ``kaoping verify`` runs) against the log's verifier keys: each check, or the first
    failure."""
    session = await need_session(request)
    bundle = await api_get(request, session, _api(year, subject) + "/evidence", raw=True)
    if not bundle.ok:
        return refused(request, session, bundle, f"{subject} 证据包 evidence bundle")
    keys = services_of(request).signer.trusted_vkeys()
    try:
        checks = await to_thread.run_sync(verify_bundle, bundle.body, keys)
        failure = None
    except VerifyError as exc:
        checks, failure = [], str(exc)
    return render(request, "evidence.html", session, year=year, subject=subject,
                  checks=checks, failure=failure, size=len(bundle.body), keys=keys)
