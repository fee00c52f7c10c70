"""Rebuilding every read model from zero, and explain / as-of latency, at log size (PostgreSQL).

The log: ``DemoCity(services, units=, cadres=)`` (two cycles run to publication through the
use cases, one save per command), then -- to reach ``events`` cheaply -- extra units registered
in saves of 500 aggregates. They come after both cycles' rosters, so they belong to no
comparison pool: every pool's evidence is in the demo part.

Measured in the same run, against baselines measured in that run:

1. rebuild: every projection reset, then ``services.follower.catch_up()`` timed; events of the
   log per second of wall time (one read pass shared by every projection), split by projection
   and by part of the log (demo / filler), with the process's resident memory along the way;
2. the ceiling: a raw psycopg keyset read of the same (ledger JOIN events) rows in pages of
   1,000, once before and once after the rebuild (the rate over both), and the same read
   decoding every event with the store's mapper;
3. the library's ``ProjectionRunner`` (one event per transaction) with a trivial counting
   projection in its own tracking table, over the first ``runner_events`` events;
4. ``verify-log`` over the whole log once it is signed, with two threads and with worker
   processes, against the same ceiling;
5. ``explain()`` for random subjects (teams, principals and deputies of both cycles) at the
   head and at an earlier position, once on the demo-only log and again on the full log, with
   the size of each subject's pool beside the latencies.
"""

from __future__ import annotations

import random
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.projection import Projection as LibraryProjection
from eventsourcing.projection import ProjectionRunner
from psycopg.sql import SQL, Identifier

from bench.common import percentiles, rate, scratch_postgres, table, timed
from domain.scheme import SubjectKind
from domain.subject_file import SubjectFile
from domain.units import UnitKind, register_unit
from projections.follower import LoggedEvent, Projection, head_position
from service.db import Cursor
from service.demo import YEARS, DemoCity
from service.explain import explain
from service.ledger.verify_log import DEFAULT_WORKERS, Report, verify_log
from service.published import clear_cache, published_as_of
from service.runtime import Services
from service.settings import Settings
from service.store import EventStore, library_env
from service.streams import END

MIB = 1024  # /proc reports KiB
FILL_BATCH = 500
RAW_PAGE = 1000
COUNTER = "bench_replay_counter"  # the library projection's name: env prefix and table names


# --- memory ---------------------------------------------------------------------------------

def _status_kib(key: str) -> int:
    """A ``/proc/self/status`` field (VmRSS, VmHWM) in KiB; 0 where there is no /proc."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Reset the process's peak RSS (Linux: ``5`` into clear_refs) so growth is measurable."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_kib() -> int:
    return _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- building the log -----------------------------------------------------------------------

@dataclass
class Log:
    demo_head: int  # last position written by the demo city
    head: int  # last position of the whole log
    demo_s: float
    fill_s: float
    subjects: int
    file_events: int  # events of subject files (the pools' evidence)
    cycle_events: int

    @property
    def events(self) -> int:
        return self.head + 1

    @property
    def demo_events(self) -> int:
        return self.demo_head + 1


def _fill(services: Services, count: int) -> None:
    """Register ``count`` extra units, FILL_BATCH aggregates per save: no pool holds them."""
    done = 0
    while done < count:
        n = min(FILL_BATCH, count - done)
        services.store.save(*[register_unit(f"X{done + i:07d}", "填充单位", UnitKind.DEPARTMENT,
                                            "vertical", "bench") for i in range(n)])
        done += n


def _count(cur: Cursor, sql: str, params: Sequence[Any] = ()) -> int:
    cur.execute(sql, params)
    row = cur.fetchone()
    return 0 if row is None or row[0] is None else int(row[0])


def _demo(services: Services, units: int, cadres: int) -> tuple[int, float]:
    demo_s = timed(lambda: DemoCity(services, units=units, cadres=cadres, seed=2025).run())
    with services.db.read() as cur:
        return head_position(cur), demo_s


def _finish_log(services: Services, demo_head: int, demo_s: float, events: int) -> Log:
    fill_s = timed(lambda: _fill(services, max(0, events - demo_head - 1)))
    with services.db.read() as cur:
        head = head_position(cur)
        files = _count(cur, "SELECT count(*) FROM kaoping_events WHERE topic LIKE %s",
                       ("kaoping/SubjectFile.%",))
        cycles = _count(cur, "SELECT count(*) FROM kaoping_events WHERE topic LIKE %s",
                        ("kaoping/Cycle.%",))
    subjects = sum(len(services.evaluation.cycle(y).roster) for y in YEARS)
    return Log(demo_head, head, demo_s, fill_s, subjects, files, cycles)


def _analyze(settings: Settings) -> None:
    """Planner statistics for the freshly written tables (autovacuum would get there too), and
    a CHECKPOINT, so the write-back of what the previous phase wrote (a million rows) does not
    land inside the next phase's latency samples."""
    with psycopg.connect(settings.migrate_database_url or settings.database_url,
                         autocommit=True) as conn:
        conn.execute("ANALYZE")
        conn.execute("CHECKPOINT")


# --- the ceiling ----------------------------------------------------------------------------

def _raw_read(settings: Settings, services: Services | None) -> tuple[int, float]:
    """Keyset pages of RAW_PAGE (ledger JOIN events) rows; decode each event if given a store."""
    rows_read = 0

    def run() -> None:
        nonlocal rows_read
        decode = services.store.mapper.to_domain_event if services is not None else None
        with psycopg.connect(settings.database_url) as conn:
            after = -1
            while True:
                rows = conn.execute(
                    "SELECT l.position, l.leaf_hash, e.originator_id, e.originator_version, "
                    "e.topic, e.state FROM kaoping_ledger l JOIN kaoping_events e ON "
                    "e.notification_id = l.notification_id WHERE l.position > %s "
                    "ORDER BY l.position LIMIT %s", (after, RAW_PAGE)).fetchall()
                if not rows:
                    return
                if decode is not None:
                    for _, _, sid, version, topic, state in rows:
                        decode(StoredEvent(sid, version, topic, state))
                rows_read += len(rows)
                after = rows[-1][0]

    seconds = timed(run)
    return rows_read, seconds


# --- the rebuild ----------------------------------------------------------------------------

@dataclass
class Page:
    projection: str
    first: int  # -1 for a settle (work a projection deferred until it has read all there was)
    count: int
    other_s: float  # since the previous apply or settle ended: read, tracking, commit
    apply_s: float
    rss_kib: int


@dataclass
class Probe:
    """Where the rebuild's time and memory go, page by page."""

    pages: list[Page] = field(default_factory=list)
    last: float = 0.0

    def start(self) -> None:
        self.last = time.perf_counter()


class TimedProjection:
    """A projection as the follower sees it, timing each page's apply (and its settle, the
    optional hook the follower calls once it has read all there was)."""

    def __init__(self, inner: Projection, probe: Probe) -> None:
        self.inner, self.probe = inner, probe
        self.name: str = inner.name
        self.tables: tuple[str, ...] = inner.tables
        settle = getattr(inner, "settle", None)
        if settle is not None:
            self.settle = self._timed_settle(settle)

    def __getattr__(self, name: str) -> Any:  # any other optional hook, untimed
        if name == "inner":  # not set yet: never recurse
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _record(self, first: int, count: int, started: float) -> None:
        ended = time.perf_counter()
        self.probe.pages.append(Page(self.name, first, count, started - self.probe.last,
                                     ended - started, _status_kib("VmRSS")))
        self.probe.last = ended

    def _timed_settle(self, settle: Callable[[Cursor, int], None]) -> Callable[[Cursor, int], None]:
        def timed_settle(cur: Cursor, up_to: int) -> None:
            started = time.perf_counter()
            settle(cur, up_to)
            self._record(-1, 0, started)

        return timed_settle

    def apply(self, cur: Cursor, events: Sequence[LoggedEvent]) -> None:
        started = time.perf_counter()
        self.inner.apply(cur, events)
        self._record(events[0].position, len(events), started)


@dataclass
class Rebuild:
    seconds: float
    applied: int
    probe: Probe
    rss_before_kib: int
    peak_kib: int
    peak_reset: bool
    rss_after_kib: int
    rows: dict[str, int]
    page_size: int
    index_builds: list[tuple[str, float]]  # read models built without indexes: build seconds


def _rebuild(services: Services) -> Rebuild:
    follower = services.follower
    original = list(follower.projections)
    probe = Probe()
    for p in original:
        follower.reset(p)
    follower.index_builds.clear()
    follower.projections = [TimedProjection(p, probe) for p in original]
    applied = 0

    def run() -> None:
        nonlocal applied
        applied = follower.catch_up()

    try:
        rss_before = _status_kib("VmRSS")
        reset = _reset_peak()
        probe.start()
        seconds = timed(run)
        peak, rss_after = _peak_kib(), _status_kib("VmRSS")
    finally:
        follower.projections = original
    with services.db.read() as cur:
        rows = {t: _count(cur, f"SELECT count(*) FROM {t}") for p in original for t in p.tables}
    return Rebuild(seconds, applied, probe, rss_before, peak, reset, rss_after, rows,
                   follower.page_size, list(follower.index_builds))


# --- the library's runner -------------------------------------------------------------------

class CountingView(PostgresTrackingRecorder):
    """Events per topic, in the same transaction as the library's tracking row."""

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.counts = (Identifier(self.datastore.schema), Identifier(f"{COUNTER}_counts"))
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {0}.{1} (topic text PRIMARY KEY, events bigint NOT NULL)"
        ).format(*self.counts))

    def count(self, tracking: Tracking, topic: str) -> None:
        with self.datastore.transaction(commit=True) as curs:
            self._insert_tracking(curs, tracking)
            curs.execute(SQL(
                "INSERT INTO {0}.{1} (topic, events) VALUES (%s, 1) ON CONFLICT (topic) "
                "DO UPDATE SET events = {1}.events + 1").format(*self.counts), (topic,))


@dataclass
class RunnerResult:
    target: int
    processed: int
    seconds: float  # from constructing the runner to the target-th event committed
    steady_s: float  # from the first event committed to the target-th
    error: str | None
    counted: int  # the view's total after the runner stopped (-1: unreadable)


def _counting_projection(target: int, done: threading.Event,
                         stamps: list[float]) -> type[LibraryProjection[CountingView]]:
    class Counting(LibraryProjection[CountingView]):
        name = COUNTER

        def process_event(self, domain_event: Any, tracking: Tracking) -> None:
            self.view.count(tracking, type(domain_event).__qualname__)
            stamps.append(time.perf_counter())
            if len(stamps) >= target:
                done.set()

    return Counting


def _library_runner(settings: Settings, target: int) -> RunnerResult:
    admin = settings.with_overrides(database_url=settings.migrate_database_url or "")
    # The store's own env (its recorder, no CREATE_TABLE); the projection's tables are created
    # by the library (its env is prefixed with the projection's name).
    env = library_env(admin) | {f"{COUNTER.upper()}_CREATE_TABLE": "y"}
    done, stamps = threading.Event(), list[float]()
    projection = _counting_projection(target, done, stamps)
    error = None
    started = time.perf_counter()
    deadline = started + 60 + target / 100
    runner: ProjectionRunner[EventStore, CountingView] | None = None
    try:
        runner = ProjectionRunner[EventStore, CountingView](
            application_class=EventStore, projection_class=projection, view_class=CountingView,
            env=env)
        with runner:
            while not done.wait(0.05):
                if runner.is_interrupted.is_set() or time.perf_counter() > deadline:
                    break
    except Exception as exc:  # noqa: BLE001 -- reported: the runner is a baseline, not the subject
        error = f"{type(exc).__name__}: {exc}"
    finally:
        if runner is not None:
            runner.view.datastore.close()
    processed = len(stamps)
    if processed < target and error is None:
        error = f"stopped after {processed:,} of {target:,} events"
    end = stamps[min(processed, target) - 1] if processed else time.perf_counter()
    return RunnerResult(target, min(processed, target), end - started,
                        end - stamps[0] if processed else 0.0, error, _counted(admin))


def _counted(admin: Settings) -> int:
    """What the runner's view holds: events counted in its own transactions."""
    try:
        with psycopg.connect(admin.database_url) as conn:
            row = conn.execute(SQL("SELECT coalesce(sum(events), 0) FROM {}").format(
                Identifier(f"{COUNTER}_counts"))).fetchone()
    except psycopg.Error:
        return -1
    return -1 if row is None else int(row[0])


# --- explain and as-of ----------------------------------------------------------------------

@dataclass
class Sample:
    year: int
    subject: str
    kind: SubjectKind
    group: str
    earlier: int  # a position between the opening of the subject's file and the demo's end
    head_s: list[float] = field(default_factory=list)  # one per pass
    asof_s: list[float] = field(default_factory=list)


@dataclass
class PoolSize:
    subjects: int
    events: int  # events of the pool's subject files (its evidence), at the head


def _samples(services: Services, n: int, demo_head: int, rng: random.Random) -> list[Sample]:
    """``n`` subjects spread evenly over (year, kind)."""
    strata = [(y, k) for y in YEARS for k in SubjectKind]
    out = []
    with services.db.read() as cur:
        for i, (year, kind) in enumerate(strata):
            want = n // len(strata) + (1 if i < n % len(strata) else 0)
            entries = [e for e in services.evaluation.cycle(year).roster if e.kind == kind]
            for entry in rng.sample(entries, min(want, len(entries))):
                sid = SubjectFile.id_for(year, entry.subject)
                opened = _count(cur, "SELECT position FROM kaoping_ledger WHERE stream_id = %s "
                                "AND stream_version = 1", (sid,))
                out.append(Sample(year, entry.subject, kind, entry.group,
                                  rng.randint(opened, demo_head)))
    rng.shuffle(out)
    return out


def _pool_sizes(services: Services) -> dict[tuple[int, str, SubjectKind], PoolSize]:
    out = {}
    with services.db.read() as cur:
        for year in YEARS:
            cycle = services.evaluation.cycle(year)
            for group, kind in sorted({(e.group, e.kind) for e in cycle.roster}):
                ids = [SubjectFile.id_for(year, e.subject) for e in cycle.pool(group, kind)]
                out[(year, group, kind)] = PoolSize(len(ids), _count(
                    cur, "SELECT count(*) FROM kaoping_ledger WHERE stream_id = ANY(%s)", (ids,)))
    return out


def _explain_pass(services: Services, samples: list[Sample]) -> float:
    mapper = services.store.mapper
    started = time.perf_counter()
    for s in samples:
        for as_of, out in ((None, s.head_s), (str(s.earlier), s.asof_s)):
            t = time.perf_counter()
            with services.db.read() as cur:
                card = explain(cur, mapper, s.year, s.subject, as_of, restricted_ok=False)
            out.append(time.perf_counter() - t)
            assert card.subject == s.subject
    return time.perf_counter() - started


def _previous_cycle_replay(services: Services, year: int, repeats: int) -> tuple[float, int, int]:
    """What an explain of ``year`` pays, with a cold cache, for last year's ranks (reading
    and checking last year's published results): ms (median), files, events."""
    mapper = services.store.mapper
    previous = services.evaluation.cycle(year - 1)
    ids = [SubjectFile.id_for(year - 1, e.subject) for e in previous.roster]
    with services.db.read() as cur:
        events = _count(cur, "SELECT count(*) FROM kaoping_ledger WHERE stream_id = ANY(%s)",
                        (ids,))
        times = []
        for _ in range(repeats):
            clear_cache()
            t = time.perf_counter()
            if published_as_of(cur, mapper, year - 1, END) is None:
                return 0.0, len(ids), events
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), len(ids), events


# --- report ---------------------------------------------------------------------------------

def _pct(values: list[float]) -> tuple[float, float, float]:
    return percentiles(values if len(values) > 1 else values * 2)


def _p50_95(values: list[float]) -> str:
    if not values:
        return "-"
    p = _pct(values)
    return f"{p[0]:.1f} / {p[1]:.1f}"


def _mib(kib: int) -> str:
    return f"{kib / MIB:,.0f}"


def _log_table(log: Log, units: int, cadres: int) -> str:
    filler = log.events - log.demo_events
    rows = [
        (f"demo city (units={units}, cadres={cadres}; {log.subjects:,} subjects over "
         f"{len(YEARS)} cycles)", f"{log.demo_events:,}", f"{log.demo_s:.1f}",
         f"{rate(log.demo_events, log.demo_s):,.0f}"),
        (f"  of which subject-file events (pool evidence); cycle events: {log.cycle_events:,}",
         f"{log.file_events:,}", "", ""),
        (f"extra units, {FILL_BATCH} aggregates per save (in no pool)", f"{filler:,}",
         f"{log.fill_s:.1f}", f"{rate(filler, log.fill_s):,.0f}"),
        ("log", f"{log.events:,}", f"{log.demo_s + log.fill_s:.1f}", ""),
    ]
    return table("The log (PostgreSQL)", rows, ("part", "events", "seconds", "events/s"))


def _parts(log: Log, pages: list[Page]) -> dict[str, tuple[int, float]]:
    """(events, seconds) per part of the log; "settle" is deferred work done at the end."""
    out: dict[str, tuple[int, float]] = {}
    for p in pages:
        part = "settle" if p.first < 0 else "demo" if p.first <= log.demo_head else "filler"
        n, sec = out.get(part, (0, 0.0))
        out[part] = (n + p.count, sec + p.other_s + p.apply_s)
    return out


def _rebuild_table(log: Log, raw: tuple[int, float], decoded: tuple[int, float],
                   rb: Rebuild, runner: RunnerResult) -> str:
    raw_rate, dec_rate = rate(raw[0], raw[1]), rate(decoded[0], decoded[1])
    rb_rate = rate(log.events, rb.seconds)
    parts = _parts(log, rb.probe.pages)
    demo_s, fill_s, settle_s = (parts.get(k, (0, 0.0))[1] for k in ("demo", "filler", "settle"))
    lib_rate = rate(runner.processed, runner.seconds)
    steady = rate(runner.processed - 1, runner.steady_s) if runner.processed > 1 else 0.0
    rss = [p.rss_kib for p in rb.probe.pages] or [0]
    quarters = [rss[min(len(rss) - 1, len(rss) * q // 4)] for q in (1, 2, 3, 4)]
    rows = [
        ("raw psycopg keyset read, pages of 1,000 (ceiling)", f"{raw_rate:,.0f}",
         f"{raw[1]:.2f} s for {raw[0]:,} rows", "1.00"),
        ("same read, every event decoded by the store's mapper", f"{dec_rate:,.0f}",
         f"{decoded[1]:.2f} s", f"{dec_rate / raw_rate:.2f}"),
        (f"rebuild: reset + Follower.catch_up(), {_names(rb)} read models",
         f"{rb_rate:,.0f}",
         f"{rb.seconds:.1f} s; one read pass, {rb.applied:,} applications "
         f"({rb.applied / log.events:.0f} read models x events)", f"{rb_rate / raw_rate:.3f}"),
        (f"  pages of the demo part ({log.demo_events:,} events, all read models)",
         f"{rate(log.demo_events, demo_s):,.0f}", f"{demo_s:.1f} s", ""),
        (f"  pages of the extra units ({log.events - log.demo_events:,} events, all read models)",
         f"{rate(log.events - log.demo_events, fill_s):,.0f}", f"{fill_s:.1f} s", ""),
        ("  settle: deferred work done once at the end (results: dirty pools)", "",
         f"{settle_s:.1f} s", ""),
        *((f"  {name}: loaded without its indexes, built at the head (projections/bulk.py)", "",
           f"{seconds:.1f} s to build them", "") for name, seconds in rb.index_builds),
        (f"library ProjectionRunner, 1 event per transaction (first {runner.target:,} events)",
         f"{lib_rate:,.0f}",
         f"{runner.seconds:.1f} s from start; steady {steady:,.0f}/s; its view counted "
         f"{runner.counted:,} when stopped" + (f"; {runner.error}" if runner.error else ""),
         f"{lib_rate / raw_rate:.3f}"),
        ("rebuild / library runner", f"{rb_rate / lib_rate:.1f}x" if lib_rate else "-", "", ""),
        ("rebuild memory: RSS before -> peak -> after (MiB)",
         f"{_mib(rb.rss_before_kib)} -> {_mib(rb.peak_kib)} -> {_mib(rb.rss_after_kib)}",
         f"peak growth {_mib(rb.peak_kib - rb.rss_before_kib)} MiB"
         + ("" if rb.peak_reset else " (peak since process start: clear_refs refused)")
         + "; RSS after 1/4, 1/2, 3/4, all pages: " + ", ".join(_mib(q) for q in quarters),
         ""),
    ]
    return table(f"Rebuild every read model from zero, {log.events:,} events (PostgreSQL)",
                 rows, ("what", "events/s", "notes", "of ceiling"))


def _names(rb: Rebuild) -> int:
    return len({p.projection for p in rb.probe.pages})


def _projection_table(log: Log, rb: Rebuild) -> str:
    rows = []
    for name in dict.fromkeys(p.projection for p in rb.probe.pages):
        pages = [p for p in rb.probe.pages if p.projection == name]
        parts = _parts(log, pages)
        other = sum(p.other_s for p in pages)
        apply = sum(p.apply_s for p in pages)
        worst = max((p for p in pages if p.first >= 0), key=lambda p: p.apply_s)
        cells = [name, f"{sum(1 for p in pages if p.first >= 0):,}", f"{other:.1f}",
                 f"{apply:.1f}", f"{rate(log.events, other + apply):,.0f}"]
        for part in ("demo", "filler"):
            n, sec = parts.get(part, (0, 0.0))
            cells.append(f"{rate(n, sec):,.0f}" if n else "-")
        cells += [f"{parts['settle'][1]:.2f}" if "settle" in parts else "-",
                  f"{worst.apply_s * 1000:.0f} ms @ {worst.first:,}"]
        rows.append(tuple(cells))
    results = rb.rows.get("rm_results", 0)
    note = (f"Rows after the rebuild: {', '.join(f'{t} {n:,}' for t, n in rb.rows.items())}"
            f" (roster entries over both cycles: {log.subjects:,}"
            + ("" if results == log.subjects else " -- rm_results DIFFERS") + ").")
    return table("Rebuild by read model (one shared read pass, pages of "
                 f"{rb.page_size:,}: a page's read and commit fall to its first read model)", rows,
                 ("read model", "pages", "read+commit s", "apply s", "events/s",
                  "demo part ev/s", "extra units ev/s", "settle s", "slowest page apply")
                 ) + "\n" + note + "\n"


def _explain_table(log: Log, samples: list[Sample],
                   pools: dict[tuple[int, str, SubjectKind], PoolSize],
                   previous: dict[int, tuple[float, int, int]], passes: list[int]) -> str:
    rows = []
    strata = [(y, k) for y in YEARS for k in SubjectKind]
    for year, kind in [*strata, (0, None)]:
        group = [s for s in samples if (year == 0 or (s.year == year and s.kind == kind))]
        if not group:
            continue
        sizes = [pools[(s.year, s.group, s.kind)] for s in group]
        label = "all" if year == 0 else f"{year} {kind}"
        cells = [label, str(len(group)),
                 f"{statistics.median(z.subjects for z in sizes):.0f}",
                 f"{statistics.median(z.events for z in sizes):,.0f}"]
        for i in range(len(passes)):
            cells += [_p50_95([s.head_s[i] for s in group]),
                      _p50_95([s.asof_s[i] for s in group])]
        rows.append(tuple(cells))
    for i, size in enumerate(passes):
        every = [v for s in samples for v in (s.head_s[i], s.asof_s[i])]
        p = _pct(every)
        rows.append((f"all, head and as-of, log of {size:,}", str(len(every)), "", "",
                     *(["", ""] * i), f"p50 {p[0]:.1f}", f"p95 {p[1]:.1f}, p99 {p[2]:.1f}",
                     *(["", ""] * (len(passes) - i - 1))))
    subjects = [z.subjects for z in pools.values()]
    events = [z.events for z in pools.values()]
    rows.append((f"pools: {len(pools)} (min / median / max)", "",
                 f"{min(subjects)} / {statistics.median(subjects):.0f} / {max(subjects)}",
                 f"{min(events):,} / {statistics.median(events):,.0f} / {max(events):,}",
                 *([""] * (2 * len(passes)))))
    first = [s for s in samples if s.year == YEARS[0]]
    if len({pools[(s.year, s.group, s.kind)].events for s in first}) > 1:
        x = [float(pools[(s.year, s.group, s.kind)].events) for s in first]
        cells = []
        for i in range(len(passes)):
            for values in ([s.head_s[i] for s in first], [s.asof_s[i] for s in first]):
                fit = statistics.linear_regression(x, [v * 1000 for v in values])
                cells.append(f"{fit.intercept:.1f} + {fit.slope * 100:.2f}/100 ev")
        rows.append((f"{YEARS[0]}: ms ~ a + b x pool events (least squares)", str(len(first)),
                     "", "", *cells))
    for year, (ms, files, evs) in sorted(previous.items()):
        rows.append((f"{year}: last year's ranks (published {year - 1}, cold)", "", f"{files:,}",
                     f"{evs:,}", f"{ms:.1f} ms per explain", *([""] * (2 * len(passes) - 1))))
    header = ["subjects", "n", "pool subjects (median)", "pool events (median)"]
    for size in passes:
        header += [f"head p50/p95 ms, log {size:,}", f"as-of p50/p95 ms, log {size:,}"]
    return table(f"explain() at the head and as of an earlier position (log of {log.events:,})",
                 rows, tuple(header))


@dataclass
class Verified:
    sign_s: float
    threads_s: float
    processes_s: float
    processes: int


def _verify(services: Services) -> Verified:
    """Sign the whole log (the tree nodes verify-log compares), then verify it with two threads
    and with the default worker processes."""
    sign_s = timed(lambda: services.signer.sign(services.db, services.clock.now()))
    vkeys = [services.signer.vkey]
    reports: list[Report] = []
    threads_s = timed(lambda: reports.append(verify_log(services.db, vkeys, workers=1)))
    processes_s = timed(lambda: reports.append(
        verify_log(services.db, vkeys, workers=DEFAULT_WORKERS)))
    assert all(r.ok for r in reports), reports[-1].failures
    return Verified(sign_s, threads_s, processes_s, reports[-1].processes)


def _verify_table(log: Log, raw: tuple[int, float], verified: Verified) -> str:
    raw_rate = rate(raw[0], raw[1])
    threads, processes = (rate(log.events, verified.threads_s),
                          rate(log.events, verified.processes_s))
    rows = [
        ("raw psycopg keyset read, pages of 1,000 (ceiling)", f"{raw_rate:,.0f}", "", "1.00"),
        ("sign: the tree over the whole log, one checkpoint",
         f"{rate(log.events, verified.sign_s):,.0f}", f"{verified.sign_s:.1f} s", ""),
        ("verify-log, two threads (--workers 1)", f"{threads:,.0f}",
         f"{verified.threads_s:.1f} s", f"{threads / raw_rate:.2f}"),
        (f"verify-log, --workers {DEFAULT_WORKERS}: {verified.processes} worker processes",
         f"{processes:,.0f}", f"{verified.processes_s:.1f} s", f"{processes / raw_rate:.2f}"),
    ]
    return table(f"verify-log at log size, {log.events:,} events (PostgreSQL)", rows,
                 ("what", "events/s", "notes", "of ceiling"))


# --- run ------------------------------------------------------------------------------------

def bench_replay(settings: Settings, units: int, cadres: int, events: int, runner_events: int,
                 samples: int) -> str:
    services = Services(settings)
    rng = random.Random(11)
    try:
        demo_head, demo_s = _demo(services, units, cadres)
        _analyze(settings)
        chosen = _samples(services, samples, demo_head, rng)
        passes = [demo_head + 1]
        _explain_pass(services, chosen)
        log = _finish_log(services, demo_head, demo_s, events)
        _analyze(settings)
        passes.append(log.events)
        pools = _pool_sizes(services)
        previous = {y: _previous_cycle_replay(services, y, 3) for y in YEARS[1:]}
        _raw_read(settings, None)  # warm the cache for both readers alike
        raw = _raw_read(settings, None)
        decoded = _raw_read(settings, services)
        rb = _rebuild(services)
        # The ceiling again after the rebuild, averaged with the one before: the machine is
        # shared, and a change in its load between the two readings would move the ratio.
        again = _raw_read(settings, None)
        raw = (raw[0] + again[0], raw[1] + again[1])
        runner = _library_runner(settings, min(runner_events, log.events))
        verified = _verify(services)
        _analyze(settings)
        _explain_pass(services, chosen)
    finally:
        services.close()
    assert rb.applied == log.events * _names(rb), (rb.applied, log.events)
    return "\n".join([_log_table(log, units, cadres),
                      _rebuild_table(log, raw, decoded, rb, runner),
                      _verify_table(log, raw, verified),
                      _projection_table(log, rb),
                      _explain_table(log, chosen, pools, previous, passes)])


def run(*, units: int = 121, cadres: int = 1000, events: int = 1_000_000,
        runner_events: int = 10_000, samples: int = 200) -> str:
    with tempfile.TemporaryDirectory() as tmp, scratch_postgres(Path(tmp)) as settings:
        return bench_replay(settings, units, cadres, events, runner_events, samples)
