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


def open_subjects(cur: Cursor, investigator: str) -> dict[tuple[int, str], str]:
    """(year, subject) -> an open case of ``investigator`` that covers it (the lowest id)."""
    cur.execute("SELECT year, subjects, case_id FROM rm_cases WHERE investigator = %s AND "
                "state = 'assigned' ORDER BY case_id DESC", (investigator,))
    return {(int(y), s): str(c) for y, subjects, c in cur.fetchall() for s in json.loads(subjects)}


def list_cases(cur: Cursor, *, investigator: str | None, after: str | None, limit: int,
               ) -> list[dict[str, Any]]:
    """Cases by id (keyset pages after the id ``after``); only ``investigator``'s if given."""
    sql = "SELECT case_id, year, subjects, investigator, state FROM rm_cases WHERE 1 = 1"
    params: list[object] = []
    if after is not None:
        sql += " AND case_id > %s"
        params.append(after)
    if investigator is not None:
        sql += " AND investigator = %s"
        params.append(investigator)
    cur.execute(sql + " ORDER BY case_id LIMIT %s", [*params, limit])
    return [{"case_id": str(r[0]), "year": int(r[1]), "subjects": json.loads(r[2]),
             "investigator": r[3], "state": str(r[4])} for r in cur.fetchall()]


def access_log(cur: Cursor, *, subject: str | None, after: int, limit: int,
               what: str | None = None) -> list[dict[str, Any]]:
    sql = ("SELECT position, reader, role, what, year, subject, case_id, allowed, rule, at, "
           "count, last_at FROM rm_access_log WHERE position > %s")
    params: list[object] = [after]
    if subject is not None:
        sql += " AND subject = %s"
        params.append(subject)
    if what is not None:
        sql += " AND what = %s"
        params.append(what)
    cur.execute(sql + " ORDER BY position LIMIT %s", [*params, limit])
    keys = ("position", "reader", "role", "what", "year", "subject", "case", "allowed", "rule",
            "at", "count", "last")
    return [dict(zip(keys, (*r[:7], bool(r[7]), *r[8:10], int(r[10]), r[11] or r[9]),
                     strict=True)) for r in cur.fetchall()]
