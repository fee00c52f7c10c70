"""/api/v1/cycles/{year}/exports — published results for the cadre-information system.

Grades also as GB/A1517 考核结论 codes (domain-notes §1.2): 1 优秀, 2 称职, 3 基本称职, 4 不称职;
no grade as its reason code (5, 5A, 5B, 5C, 6, 6A). Team grades (好/较好/一般/较差) have no
A1517 code: A1517 describes individuals.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

import msgspec
from anyio import to_thread
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter

from api.auth import SECURITY, current_principal
from api.openapi import problems
from domain.cycle import Phase
from domain.errors import Conflict, Forbidden
from domain.scheme import SubjectKind

A1517 = {"优秀": "1", "称职": "2", "基本称职": "3", "不称职": "4"}
COLUMNS = ("year", "results_version", "subject", "code", "name", "kind", "group", "unit_code",
           "composite", "rank",
           "previous_rank", "rank_change", "final_grade", "a1517", "no_grade_reason")


class ExportRow(msgspec.Struct, kw_only=True):
    year: int
    results_version: int  # 1 as published; one more per correction (更正)
    subject: str
    code: str
    name: str
    kind: SubjectKind
    group: str
    unit_code: str
    composite: str
    rank: int
    previous_rank: int | None
    rank_change: int | None
    final_grade: str | None
    a1517: str | None
    no_grade_reason: str | None


def _rows(services: Any, year: int) -> list[ExportRow]:
    cycle = services.evaluation.cycle(year)
    if cycle.phase != Phase.PUBLISHED:
        msg = f"cycle {year} is not published; exports are of published results"
        raise Conflict(msg, rule="export.published")
    names = {e.subject: e for e in cycle.roster}
    published = services.evaluation.published(year)  # the version in force, from the log
    out = []
    for pool, r in ((p, r) for p in published.results() for r in p.results):
        entry, kind = names[r.subject], pool.kind
        code = A1517.get(r.final_grade or "") if kind != SubjectKind.TEAM else None
        out.append(ExportRow(
            year=year, results_version=published.version, subject=r.subject, code=r.code,
            name=entry.name, kind=kind,
            group=pool.group, unit_code=entry.unit_code, composite=str(r.composite), rank=r.rank,
            previous_rank=r.previous_rank, rank_change=r.rank_change, final_grade=r.final_grade,
            a1517=r.no_grade_reason if r.final_grade is None else code,
            no_grade_reason=r.no_grade_reason))
    return out


@get("/cycles/{year:int}/exports/results", security=SECURITY, tags=["results"],
     summary="Published results for other systems (CSV or JSON)",
     responses=problems(401, 403, 404, 409))
async def export_results(request: Request[Any, Any, Any], state: State, year: FromPath[int],
                         format: Annotated[str, QueryParameter(  # noqa: A002
                             pattern="^(csv|json)$")] = "json") -> Response[Any]:
    """Every subject's published result with its grade as a GB/A1517 code; ``format=csv`` for
    a UTF-8 CSV (with BOM, so spreadsheet software reads the Chinese names). The organizer,
    the committee and supervisors get every row; a cadre (or a unit) its own row; an
    investigator the rows of its open cases' subjects (recorded)."""
    principal, services = current_principal(request), state.services
    cycle = await to_thread.run_sync(services.evaluation.cycle, year)
    mine = await to_thread.run_sync(services.cards.export_scope, principal, cycle)
    if mine is not None and not mine:
        msg = "exports are for the organizer, the committee and supervisors; a subject gets " \
              "its own row, an investigator the rows of its cases"
        raise Forbidden(msg, rule="export.reader")
    rows = [r for r in await to_thread.run_sync(_rows, services, year)
            if mine is None or r.subject in mine]
    if format == "json":
        return Response(rows)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(["" if (v := getattr(row, c)) is None else v for c in COLUMNS])
    return Response("\ufeff" + buf.getvalue(), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="results-{year}.csv"'})
