"""The console's cycle pages: home, the dashboard and a comparison group's ranking."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import Request, Response, get
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect

from api.console.upstream import api_get, api_get_items
from api.console.web import HEADERS, need_session, refused, render, services_of
from domain.scheme import Component
from domain.scoring import quota_limit

PHASES = [("setup", "设置", "Set-up"), ("frozen", "方案冻结", "Scheme frozen"),
          ("scoring", "评分", "Scoring"), ("sealed", "封存", "Sealed"),
          ("published", "公布", "Published")]
STEPS = {
    Component.COMMITMENTS: "责任承诺考实 commitments",
    Component.LEADER_REVIEW: "领导把关考评 leader review",
    Component.DEMOCRATIC: "民主测评 democratic evaluation",
    Component.SURVEY: "民意调查 opinion survey",
    Component.INDICATORS: "部门核对考证 department verification",
    Component.INSPECTION: "组织系统考核 inspection",
    Component.ANALYSIS: "实绩分析评估 performance analysis",
}
RECENT_YEARS = 4  # the home page lists the cycles of this many years back from today's

KINDS = {"team": "领导班子 team", "principal": "正职 principal", "deputy": "副职 deputy"}


def _api(year: int) -> str:
    return f"/api/v1/cycles/{year}"


@get("/", include_in_schema=False)
async def console_home(request: Request[Any, Any, Any]) -> Response[Any]:
    session = await need_session(request)
    now = services_of(request).clock.now()
    recent = range(now.year, now.year - RECENT_YEARS, -1)
    answers = [await api_get(request, session, _api(y)) for y in recent]
    return render(request, "home.html", session, years=[
        {"year": y, "phase": a.body["phase"]} for y, a in zip(recent, answers, strict=True)
        if a.ok], recent_years=RECENT_YEARS)


@get("/cycles", include_in_schema=False)
async def go_to_cycle(request: Request[Any, Any, Any],
                      year: Annotated[int | None, QueryParameter(ge=2000, le=2999)] = None,
                      ) -> Response[Any]:
    await need_session(request)
    return Redirect(f"/console/cycles/{year}" if year else "/console", status_code=303,
                    headers=HEADERS)


def _missing(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per step (component), the subjects whose input is still missing."""
    out = []
    for component, label in STEPS.items():
        subjects = [i["result"]["subject"] for i in items
                    if component.value in i["result"]["missing"]]
        total = sum(1 for i in items if component.value in i["result"]["missing"]
                    or component.value in i["result"]["components"])
        if total:
            out.append({"label": label, "missing": subjects, "total": total})
    return out


@get("/cycles/{year:int}", include_in_schema=False)
async def dashboard(request: Request[Any, Any, Any], year: FromPath[int]) -> Response[Any]:
    session = await need_session(request)
    cycle = await api_get(request, session, _api(year))
    if not cycle.ok:
        return refused(request, session, cycle, f"{year} 年度考核")
    services = services_of(request)
    zone = ZoneInfo(services.settings.timezone)
    today = services.clock.now().astimezone(zone)
    announcement = await api_get(request, session, _api(year) + "/announcement")
    scheme = await api_get(request, session, _api(year) + "/scheme")
    results = await api_get_items(request, session, _api(year) + "/results")
    deadlines = []
    if announcement.ok:
        for key, label in (("starts_on", "考核开始 Assessment starts"),
                           ("ends_on", "考核结束 Assessment ends")):
            day = date.fromisoformat(announcement.body[key])
            deadlines.append({"label": label, "date": day.isoformat(),
                              "days": (day - today.date()).days})
    pools = [(p["group"], p["kind"]) for p in ((scheme.body.get("scheme") or {}).get("pools")
                                               or [])] if scheme.ok else []
    phase = cycle.body["phase"]
    reached = [p for p, _, _ in PHASES].index(phase)
    return render(request, "dashboard.html", session, year=year, cycle=cycle.body,
                  phases=[{"code": c, "zh": zh, "en": en, "state": "done" if i < reached else
                           "current" if i == reached else "todo"}
                          for i, (c, zh, en) in enumerate(PHASES)],
                  now=today.strftime("%Y-%m-%d %H:%M"), deadlines=deadlines,
                  announced=announcement.ok, pools=pools, kinds=KINDS,
                  missing=_missing(results.body["items"]) if results.ok else None,
                  # a reader who may read only some subjects' results sees only theirs counted
                  seen=len({i["result"]["subject"] for i in results.body["items"]})
                  if results.ok else 0, subjects=cycle.body["subjects"],
                  results_refused=None if results.ok else results.rule)


def _arrow(change: int | None) -> dict[str, str]:
    if change is None:
        return {"mark": "·", "text": "无上年位次 no previous rank", "cls": "none"}
    if change > 0:
        return {"mark": f"▲{change}", "text": f"上升 {change} 位 up {change}", "cls": "up"}
    if change < 0:
        return {"mark": f"▼{-change}", "text": f"下降 {-change} 位 down {-change}",
                "cls": "down"}
    return {"mark": "＝", "text": "位次不变 unchanged", "cls": "same"}


def _quota_use(scheme: dict[str, Any], group: str, kind: str,
               rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pool = next((p for p in scheme.get("pools") or []
                 if p["group"] == group and p["kind"] == kind), None)
    if pool is None:
        return []
    use = []
    for q in pool.get("quotas") or []:
        limit = quota_limit(Decimal(str(q["share"])), len(rows), q.get("rounding", "floor"),
                            q.get("hard_cap"))
        proposed = sum(1 for r in rows if r["proposed_grade"] == q["grade"])
        final = sum(1 for r in rows if r["final_grade"] == q["grade"])
        use.append({"grade": q["grade"], "share": q["share"], "limit": limit,
                    "proposed": proposed, "final": final})
    return use


@get("/cycles/{year:int}/groups/{group:str}", include_in_schema=False)
async def group_ranking(request: Request[Any, Any, Any], year: FromPath[int],
                        group: FromPath[str],
                        kind: Annotated[str, QueryParameter(pattern="^(team|principal|deputy)$")]
                        = "team") -> Response[Any]:
    session = await need_session(request)
    results = await api_get_items(request, session, _api(year) + "/results",
                                  {"group": group, "kind": kind})
    if not results.ok:
        return refused(request, session, results, f"{group} 排名 ranking")
    scheme = await api_get(request, session, _api(year) + "/scheme")
    rows = [i["result"] for i in results.body["items"]]
    return render(request, "group.html", session, year=year, group=group, kind=kind,
                  kind_label=KINDS[kind], phase=results.body["phase"],
                  rows=[{**r, "arrow": _arrow(r["rank_change"])} for r in rows],
                  quotas=_quota_use((scheme.body.get("scheme") or {}) if scheme.ok else {},
                                    group, kind, rows),
                  version=results.body.get("results_version"))
