"""Cases by investigator (for case-scoped access) and the log of restricted reads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from domain.cases import AccessRecord, Case, RefusedReads

if TYPE_CHECKING:
    from projections.follower import LoggedEvent
    from service.db import Cursor


class CasesView:
    name: str = "cases.v1"
    tables: tuple[str, ...] = ("rm_cases", "rm_access_log")

    def apply(self, cur: Cursor, events: Sequence[LoggedEvent]) -> None:
        for e in events:
            if not e.topic.startswith(("kaoping/Case.", "kaoping/AccessRecord.",
                                       "kaoping/RefusedReads.")):
                continue
            ev = e.event
            if isinstance(ev, Case.Reported):
                cur.execute("INSERT INTO rm_cases (case_id, year, subjects, investigator, state, "
                            "follow_up_hash, position) VALUES (%s, %s, %s, NULL, 'received', "
                            "%s, %s)", (str(e.stream_id), ev.year, json.dumps(ev.subjects),
                                        ev.follow_up_hash, e.position))
            elif isinstance(ev, Case.Assigned):
                cur.execute("UPDATE rm_cases SET investigator = %s, state = 'assigned', "
                            "position = %s WHERE case_id = %s",
                            (ev.investigator, e.position, str(e.stream_id)))
            elif isinstance(ev, Case.Closed):
                cur.execute("UPDATE rm_cases SET state = 'closed', position = %s "
                            "WHERE case_id = %s", (e.position, str(e.stream_id)))
            elif isinstance(ev, AccessRecord.Recorded):
                cur.execute(
                    "INSERT INTO rm_access_log (position, reader, role, what, year, subject, "
                    "case_id, allowed, rule, at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (e.position, ev.reader, ev.role, ev.what, ev.year, ev.subject, ev.case,
                     ev.allowed, ev.rule, ev.timestamp.isoformat()))
            elif isinstance(ev, RefusedReads.Counted):
                cur.execute(
                    "INSERT INTO rm_access_log (position, reader, role, what, year, subject, "
                    "case_id, allowed, rule, at, count, last_at) VALUES (%s, %s, %s, %s, %s, "
                    "%s, %s, %s, %s, %s, %s, %s)",
                    (e.position, ev.reader, ev.role, ev.what, ev.year, ev.subject, ev.case,
                     False, ev.rule, ev.first, ev.count, ev.last))


def open_subjects(cur: Cursor, investigator: str) -> set[tuple[int, str]]:
    cur.execute("SELECT year, subjects FROM rm_cases WHERE investigator = %s AND "
                "state = 'assigned'", (investigator,))
    return {(int(y), s) for y, subjects in cur.fetchall() for s in json.loads(subjects)}


def access_log(cur: Cursor, *, subject: str | None, after: int, limit: int,
               ) -> list[dict[str, Any]]:
    sql = ("SELECT position, reader, role, what, year, subject, case_id, allowed, rule, at, "
           "count, last_at FROM rm_access_log WHERE position > %s")
    params: list[object] = [after]
    if subject is not None:
        sql += " AND subject = %s"
        params.append(subject)
    cur.execute(sql + " ORDER BY position LIMIT %s", [*params, limit])
    keys = ("position", "reader", "role", "what", "year", "subject", "case", "allowed", "rule",
            "at", "count", "last")
    return [dict(zip(keys, (*r[:7], bool(r[7]), *r[8:10], int(r[10]), r[11] or r[9]),
                     strict=True)) for r in cur.fetchall()]
