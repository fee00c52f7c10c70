"""Working results (score cards, rankings with 位次进退, proposed and final grades) per pool.

On each page of events, the pools the page touched are marked, and recomputed once the
follower has read all there was, with the one score function from the evidence streams as of
that position (a subject file's events, the cycle's scheme and roster, the previous cycle's
published ranks in force). These are the *working* results: what the evidence gives now. Once
a cycle is published, what the public reads is the published version (service/published.py,
from the log itself); this model then shows organizers what a correction would change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from uuid import UUID

import msgspec

from domain.cycle import Cycle, Phase
from domain.publication import ResultsNotice
from domain.scheme import SubjectKind
from domain.scoring import SCORE_FUNCTION_VERSION, SubjectResult
from domain.subject_file import SubjectFile, pool_result
from service.db import as_uuid
from service.published import previous_ranks
from service.streams import load_streams, project, replay_as_of

if TYPE_CHECKING:
    from eventsourcing.persistence import Mapper

    from projections.follower import LoggedEvent
    from service.db import Cursor

_CYCLE_TOPICS = {Cycle.SchemeSet.TOPIC, Cycle.RosterSet.TOPIC, Cycle.SchemeAmended.TOPIC,
                 Cycle.SchemeFrozen.TOPIC, Cycle.ScoringOpened.TOPIC, Cycle.Sealed.TOPIC,
                 Cycle.Published.TOPIC, Cycle.Opened.TOPIC}
_NOTICE_TOPICS = {ResultsNotice.Issued.TOPIC, ResultsNotice.Corrected.TOPIC,
                  ResultsNotice.IssuedByDigest.TOPIC, ResultsNotice.CorrectedByDigest.TOPIC}
_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder(SubjectResult)

Pool = tuple[int, str, str]  # year, group, kind


def dirty_pools(cur: Cursor, year: int) -> set[tuple[str, str]]:
    cur.execute("SELECT grp, kind FROM rm_dirty_pools WHERE year = %s", (year,))
    return {(str(g), str(k)) for g, k in cur.fetchall()}


class ResultsView:
    name: str = "results.v1"
    tables: tuple[str, ...] = ("rm_results", "rm_cycles", "rm_subject_files", "rm_dirty_pools")

    def __init__(self, mapper: Mapper[UUID]) -> None:
        self.mapper = mapper

    def apply(self, cur: Cursor, events: Sequence[LoggedEvent]) -> None:
        up_to = events[-1].position
        pools: set[Pool] = set()
        years: set[int] = set()
        touched: set[UUID] = set()  # subject files with new evidence on this page
        for e in events:
            if e.topic == SubjectFile.Opened.TOPIC:
                ev = e.event
                cur.execute("INSERT INTO rm_subject_files (stream_id, year, subject, grp, kind) "
                            "VALUES (%s, %s, %s, %s, %s)",
                            (e.stream_id, ev.year, ev.subject, ev.group, ev.kind))
                pools.add((ev.year, ev.group, ev.kind))
            elif e.topic.startswith("kaoping/SubjectFile."):
                touched.add(e.stream_id)
            elif e.topic in _CYCLE_TOPICS:
                years.add(self._track_cycle(cur, e, up_to))
            elif e.topic in _NOTICE_TOPICS:  # next year's rank change follows the version
                pools |= self._pools_of_year(cur, self._notice_year(cur, e) + 1)
        pools |= self._pools_of(cur, sorted(touched))
        for year in sorted(years):
            pools |= self._pools_of_year(cur, year)
            if self._phase(cur, year) == Phase.PUBLISHED.value:  # next year's rank change
                pools |= self._pools_of_year(cur, year + 1)
        if pools:  # most pages of a rebuild touch none; an empty executemany still syncs
            cur.executemany("INSERT INTO rm_dirty_pools (year, grp, kind) VALUES (%s, %s, %s) "
                            "ON CONFLICT DO NOTHING", sorted(pools))

    def settle(self, cur: Cursor, up_to: int) -> None:
        """Recompute every dirty pool once (earlier years first: later ones read their
        ranks), as of ``up_to``. The follower calls it when it has read all there was."""
        cur.execute("SELECT year, grp, kind FROM rm_dirty_pools ORDER BY year, grp, kind")
        for y, g, k in cur.fetchall():
            self._recompute(cur, (int(y), str(g), str(k)), up_to)
        cur.execute("DELETE FROM rm_dirty_pools")

    def _pools_of(self, cur: Cursor, stream_ids: Sequence[UUID]) -> set[Pool]:
        pools: set[Pool] = set()
        for i in range(0, len(stream_ids), 400):
            chunk = stream_ids[i:i + 400]
            marks = ", ".join(["%s"] * len(chunk))
            cur.execute("SELECT DISTINCT year, grp, kind FROM rm_subject_files "  # noqa: S608
                        f"WHERE stream_id IN ({marks})", chunk)
            pools |= {(int(y), str(g), str(k)) for y, g, k in cur.fetchall()}
        return pools

    def _pools_of_year(self, cur: Cursor, year: int) -> set[Pool]:
        cur.execute("SELECT DISTINCT year, grp, kind FROM rm_subject_files WHERE year = %s",
                    (year,))
        return {(int(y), str(g), str(k)) for y, g, k in cur.fetchall()}

    def _phase(self, cur: Cursor, year: int) -> str | None:
        cur.execute("SELECT phase FROM rm_cycles WHERE year = %s", (year,))
        row = cur.fetchone()
        return None if row is None else str(row[0])

    def _notice_year(self, cur: Cursor, e: LoggedEvent) -> int:
        cur.execute("SELECT year FROM rm_cycles")
        for (year,) in cur.fetchall():
            if ResultsNotice.id_for(int(year)) == e.stream_id:
                return int(year)
        msg = f"results notice {e.stream_id} of no known cycle"
        raise ValueError(msg)

    def _track_cycle(self, cur: Cursor, e: LoggedEvent, up_to: int) -> int:
        cycle = replay_as_of(cur, self.mapper, e.stream_id, up_to)
        if not isinstance(cycle, Cycle):
            msg = f"stream {e.stream_id} is not a cycle"
            raise TypeError(msg)
        cur.execute("DELETE FROM rm_cycles WHERE year = %s", (cycle.year,))
        cur.execute("INSERT INTO rm_cycles (year, phase, version, position) "
                    "VALUES (%s, %s, %s, %s)",
                    (cycle.year, cycle.phase.value, cycle.version, e.position))
        return cycle.year

    def _recompute(self, cur: Cursor, pool: Pool, up_to: int) -> None:
        year, group, kind = pool
        cycle = replay_as_of(cur, self.mapper, Cycle.id_for(year), up_to)
        if not isinstance(cycle, Cycle) or cycle.scheme is None:
            return
        cur.execute("SELECT stream_id FROM rm_subject_files WHERE year = %s AND grp = %s AND "
                    "kind = %s", (year, group, kind))
        ids = [as_uuid(sid) for (sid,) in cur.fetchall()]
        streams = load_streams(cur, self.mapper, ids, up_to)
        files = [f for sid in ids if isinstance(f := project(streams[sid]), SubjectFile)]
        _, previous = previous_ranks(cur, self.mapper, year, up_to)
        result = pool_result(cycle.scheme, group, SubjectKind(kind), files, previous,
                             cycle.scoring_version(SCORE_FUNCTION_VERSION))
        cur.execute("DELETE FROM rm_results WHERE year = %s AND grp = %s AND kind = %s",
                    (year, group, kind))
        cur.executemany(
            "INSERT INTO rm_results (year, subject, grp, kind, code, seq, rank, composite, "
            "final_grade, result, position) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(year, r.subject, group, kind, r.code, seq, r.rank, str(r.composite), r.final_grade,
              _encoder.encode(r), up_to) for seq, r in enumerate(result.results)])


def read_results(cur: Cursor, year: int, *, group: str | None, kind: str | None,
                 after: tuple[str, str, int] | None, limit: int,
                 ) -> list[tuple[str, str, int, SubjectResult]]:
    """(group, kind, seq, result) in pool order, keyset-paged by (group, kind, seq)."""
    sql = "SELECT grp, kind, seq, result FROM rm_results WHERE year = %s"
    params: list[object] = [year]
    if group is not None:
        sql += " AND grp = %s"
        params.append(group)
    if kind is not None:
        sql += " AND kind = %s"
        params.append(kind)
    if after is not None:
        sql += " AND (grp > %s OR (grp = %s AND (kind > %s OR (kind = %s AND seq > %s))))"
        g, k, q = after
        params += [g, g, k, k, q]
    cur.execute(sql + " ORDER BY grp, kind, seq LIMIT %s", [*params, limit])
    return [(str(g), str(k), int(q), _decoder.decode(bytes(res)))
            for g, k, q, res in cur.fetchall()]


def read_result(cur: Cursor, year: int, subject: str) -> SubjectResult | None:
    cur.execute("SELECT result FROM rm_results WHERE year = %s AND subject = %s",
                (year, subject))
    row = cur.fetchone()
    return None if row is None else _decoder.decode(bytes(row[0]))
