"""What the ledger costs and how fast it verifies, on PostgreSQL, against baselines measured in
the same run:

1. appends: the library's plain recorder vs ours (leaves in the same transaction) and ours with
   the leaves left out (the ledger's own share), single-event saves and 100-event saves, beside
   raw psycopg inserts of the same rows (the physical limit); interleaved rounds;
2. verify-log: events per second (seconds per million) beside a raw psycopg read of the rows
   (after a warming read, alternated over three rounds);
3. signing: extending the stored tree (nodes per second);
4. inclusion proofs at the bench's log size: p50/p95/p99, in the service and through HTTP.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import Environment, EnvType

from bench.common import percentiles, rate, scratch_postgres, table, timed
from domain.units import UnitKind, register_unit
from service.ledger.verify_log import DEFAULT_WORKERS, Report, verify_log
from service.mapper import MsgspecMapper, NoTranscoder
from service.runtime import Services
from service.settings import Settings
from service.store import EventStore, PostgresLedgerRecorder, library_env


class PlainStore(Application[UUID]):
    """The same events through the library's own recorder: no ledger."""

    name = "Plain"

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        return Environment(name, dict(env or {}))

    def construct_mapper(self) -> Mapper[UUID]:
        return MsgspecMapper(transcoder=NoTranscoder())


def _units(n: int, prefix: str) -> list[Any]:
    return [register_unit(f"{prefix}{i}", "单位", UnitKind.DEPARTMENT, "vertical", "bench")
            for i in range(n)]


class NoLeavesRecorder(PostgresLedgerRecorder):
    """Our recorder with the ledger's work taken out (its leaves are not written): what our
    store's append costs without the ledger, so the ledger's own share shows."""

    def _fetch_ids_after_insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return [row["notification_id"] for row in curs.fetchall()]


def _saves(store: Application[UUID], units: list[Any], per_save: int) -> float:
    def run() -> None:
        for i in range(0, len(units), per_save):
            store.save(*units[i:i + per_save])

    return timed(run)


def _raw_inserts(dsn: str, units: list[Any], per_txn: int, mapper: MsgspecMapper) -> float:
    rows = []
    for unit in units:
        stored = mapper.to_stored_event(unit.collect_events()[0])
        rows.append((stored.originator_id, stored.originator_version, stored.topic, stored.state))
    with psycopg.connect(dsn, autocommit=per_txn == 1) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_raw (originator_id uuid, "
                     "originator_version bigint, topic text, state bytea, notification_id "
                     "bigserial, PRIMARY KEY (originator_id, originator_version))")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur:
            if per_txn == 1:
                for row in rows:
                    cur.execute("INSERT INTO bench_raw VALUES (%s, %s, %s, %s)", row)
            else:
                for i in range(0, len(rows), per_txn):
                    cur.executemany("INSERT INTO bench_raw VALUES (%s, %s, %s, %s)",
                                    rows[i:i + per_txn])
                    conn.commit()
        return time.perf_counter() - started


def _interleaved(rounds: int, per: int, each: int, dsn: str, mapper: MsgspecMapper,
                 stores: dict[str, Application[UUID]]) -> dict[str, float]:
    """Seconds spent by each variant over ``rounds`` rounds of ``each`` events, the order of
    the variants rotated from round to round."""
    names = ["raw", *stores]
    spent = dict.fromkeys(names, 0.0)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            units = _units(each, f"{name}{per}-{r}-")
            spent[name] += (_raw_inserts(dsn, units, per, mapper) if name == "raw"
                            else _saves(stores[name], units, per))
    return spent


def bench_appends(settings: Settings, single: int, batched: int, rounds: int = 10) -> str:
    """Each shape in ``rounds`` rounds; every round runs each variant on its own fresh units,
    in an order rotated from round to round, so a change in the machine's load (it is shared)
    falls on all variants alike. Rates are from the summed times."""
    admin = settings.with_overrides(database_url=settings.migrate_database_url or "")
    plain_env = {k: v for k, v in library_env(admin).items() if k != "APPLICATION_RECORDER_TOPIC"}
    plain = PlainStore(env=plain_env | {"CREATE_TABLE": "y"})
    ours = EventStore(env=library_env(admin))
    bare = EventStore(env=library_env(admin) | {
        "APPLICATION_RECORDER_TOPIC": "bench.ledger:NoLeavesRecorder"})
    mapper = MsgspecMapper(transcoder=NoTranscoder())
    dsn = admin.database_url
    rows = []
    try:
        for label, n, per in (("1 event per save", single, 1), ("100 events per save",
                                                                batched, 100)):
            each = max(per, n // rounds // per * per)
            spent = _interleaved(rounds, per, each, dsn, mapper, {
                "lib": plain, "bare": bare, "ours": ours})
            raw, lib, bare_rate, led = (rate(each * rounds, spent[k])
                                        for k in ("raw", "lib", "bare", "ours"))
            rows.append((label, f"{raw:,.0f}", f"{lib:,.0f}", f"{bare_rate:,.0f}", f"{led:,.0f}",
                         f"{led / lib:.2f}", f"{led / bare_rate:.2f}", f"{led / raw:.2f}"))
    finally:
        plain.close()
        ours.close()
        bare.close()
    return table(f"Appends on PostgreSQL (events/s; {rounds} interleaved rounds)", rows,
                 ("shape", "raw psycopg", "library, no ledger", "ours, leaves not written",
                  "ours, with ledger", "ledger/library", "ledger/ours without", "ledger/raw"))


def _fill(services: Services, total: int) -> None:
    done = 0
    while done < total:
        n = min(500, total - done)
        services.store.save(*_units(n, f"v{done}-"))
        done += n


def _raw_read(settings: Settings) -> float:
    def run() -> None:
        with psycopg.connect(settings.database_url) as conn:
            after = -1
            while True:
                rows = conn.execute(
                    "SELECT l.position, l.leaf_hash, e.originator_id, e.originator_version, "
                    "e.topic, e.state FROM kaoping_ledger l JOIN kaoping_events e ON "
                    "e.notification_id = l.notification_id WHERE l.position > %s "
                    "ORDER BY l.position LIMIT 5000", (after,)).fetchall()
                if not rows:
                    return
                after = rows[-1][0]

    return timed(run)


VERIFY_ROUNDS = 3


def bench_verify_and_proofs(settings: Settings, events: int, samples: int) -> str:
    services = Services(settings)
    try:
        fill_s = timed(lambda: _fill(services, events))
        head = services.store.recorder.max_notification_id() or 0
        sign_s = timed(lambda: services.signer.sign(services.db, services.clock.now()))
        _raw_read(settings)  # warm the cache for both readers alike
        verify_s = processes_s = raw_s = 0.0
        vkeys = [services.signer.vkey]
        reports: list[Report] = []
        for _ in range(VERIFY_ROUNDS):  # alternated, so a change in load falls on all alike
            verify_s += timed(lambda: verify_log(services.db, vkeys, workers=1))
            processes_s += timed(lambda: reports.append(  # processes even on a small log
                verify_log(services.db, vkeys, workers=DEFAULT_WORKERS, processes_from=0)))
            raw_s += _raw_read(settings)
        verify_s, processes_s, raw_s = (verify_s / VERIFY_ROUNDS, processes_s / VERIFY_ROUNDS,
                                        raw_s / VERIFY_ROUNDS)
        used = reports[-1].processes
        assert all(r.ok for r in reports), reports[-1].failures
        size = services.ledger.checkpoint().size
        rng = random.Random(7)
        in_service = []
        for _ in range(samples):
            index = rng.randrange(size)
            started = time.perf_counter()
            services.ledger.inclusion(index, size)
            in_service.append(time.perf_counter() - started)
        over_http = _http_proofs(settings, services, size, samples, rng)
    finally:
        services.close()
    p = percentiles(in_service)
    h = percentiles(over_http)
    rows = [
        ("fill (500 events per save)", f"{rate(events, fill_s):,.0f} events/s", ""),
        ("sign: extend tree + checkpoint", f"{rate(events, sign_s):,.0f} leaves/s",
         f"{sign_s:.2f} s for {events:,} leaves"),
        ("raw psycopg read of the rows (ceiling)", f"{rate(events, raw_s):,.0f} rows/s",
         f"{raw_s / events * 1e6:.1f} s per million"),
        ("verify-log, two threads (--workers 1)", f"{rate(events, verify_s):,.0f} events/s",
         f"{verify_s / events * 1e6:.1f} s per million; {raw_s / verify_s:.2f} of the raw read"),
        (f"verify-log, --workers {DEFAULT_WORKERS}: {used} worker processes",
         f"{rate(events, processes_s):,.0f} events/s",
         f"{processes_s / events * 1e6:.1f} s per million; {raw_s / processes_s:.2f} of the raw "
         "read"),
        (f"inclusion proof at {size:,} leaves (service)",
         f"p50 {p[0]:.2f} ms", f"p95 {p[1]:.2f} ms, p99 {p[2]:.2f} ms"),
        (f"inclusion proof at {size:,} leaves (HTTP)",
         f"p50 {h[0]:.2f} ms", f"p95 {h[1]:.2f} ms, p99 {h[2]:.2f} ms"),
    ]
    assert head >= events
    return table(f"Ledger at {events:,} events (PostgreSQL)", rows, ("what", "rate", "notes"))


def _http_proofs(settings: Settings, services: Services, size: int, samples: int,
                 rng: random.Random) -> list[float]:
    from litestar.testing import TestClient  # noqa: PLC0415

    from api import create_app  # noqa: PLC0415

    # Every request comes from one client address, whose anonymous budget (burst 200) would
    # refuse the samples after its burst: it is opened, not removed (each read still meets it).
    opened = msgspec.structs.replace(settings, anonymous_rate_per_second=1e6,
                                     anonymous_burst=1_000_000)
    out = []
    with TestClient[Any](app=create_app(opened, services=services)) as client:
        for _ in range(samples):
            index = rng.randrange(size)
            started = time.perf_counter()
            resp = client.get(f"/api/v1/ledger/proofs/inclusion?index={index}&size={size}")
            out.append(time.perf_counter() - started)
            assert resp.status_code == 200, (resp.status_code, resp.text[:200])
    return out


def run(*, single: int = 1000, batched: int = 20_000, events: int = 100_000,
        samples: int = 500) -> str:
    with tempfile.TemporaryDirectory() as tmp, scratch_postgres(Path(tmp)) as settings:
        parts = [bench_appends(settings, single, batched)]
    with tempfile.TemporaryDirectory() as tmp, scratch_postgres(Path(tmp)) as settings:
        parts.append(bench_verify_and_proofs(settings, events, samples))
    return "\n".join(parts)

