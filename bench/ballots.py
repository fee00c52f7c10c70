"""Ballot casting over HTTP on PostgreSQL, against a ceiling measured in the same run:

1. the ceiling: a bare Litestar app (``ceiling_app`` below, uvicorn in a subprocess) whose one
   POST decodes the same ballot body into a msgspec Struct and answers 201, storing nothing;
2. ``kaoping serve`` (the application role, projections external as in production) casting
   ballots with distinct credentials, at concurrency 8, 32 and 64;

both with one uvicorn worker process, then both with two (``workers``): each ratio is against
the ceiling with as many workers.

The load comes from a bounded asyncio client over raw keep-alive HTTP/1.1 connections (one per
concurrent request): a fixed number of pre-built requests, only to 127.0.0.1, under a total time
limit. Both servers run side by side and are measured alternately. After each Kaoping run every
status must be 201 and the stored ballot events must equal the requests; the commit transactions
(PostgreSQL ``xmin``) give the group-commit writer's batch sizes.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import msgspec
import psycopg
from litestar import Litestar, post
from litestar.params import FromPath, JSONBody

from bench.common import percentiles, rate, scratch_postgres, table
from domain.ballots import Ballot, SessionDefinition
from service.principals import Identity, IdentityKind, Principal, Role
from service.runtime import Services
from service.settings import Settings

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[1]
KAOPING = Path(sys.executable).with_name("kaoping")
CONCURRENCY = (8, 32, 64)
SESSION = "bench-ballots-2025"
SUBJECTS = ("team:B1", "team:B2", "team:B3")
ITEMS = ("de", "neng", "qin", "ji", "lian")
OPTIONS = ("excellent", "good", "fair", "poor")


class BenchError(RuntimeError):
    """The benchmark could not measure (a server died, a run overran its time limit)."""


# --- the ceiling: the same body decoded into a Struct, 201, nothing stored -----------------------

class BareCast(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    credential: Annotated[str, msgspec.Meta(min_length=16, max_length=64)]
    answers: dict[str, dict[str, str]]


class BareReceipt(msgspec.Struct, kw_only=True):
    session: str
    position: int
    tracker: str


@post("/api/v1/sessions/{code:str}/ballots", status_code=201)
async def bare_cast(code: FromPath[str], data: JSONBody[BareCast]) -> BareReceipt:
    return BareReceipt(session=code, position=len(data.answers), tracker="")


def ceiling_app() -> Litestar:
    """``uvicorn --factory bench.ballots:ceiling_app``"""
    return Litestar(route_handlers=[bare_cast], debug=False, logging_config=None)


# --- servers ---------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


@contextmanager
def _serving(argv: list[str], env: dict[str, str], log: Path) -> Iterator[tuple[int, int]]:
    """Start a server on a free port, wait until it accepts connections, always stop it."""
    port = _free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 -- our own fixed commands, no shell
            [*argv, "--host", HOST, "--port", str(port)], env=env, cwd=REPO,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                msg = f"{argv[-1]} exited with {proc.returncode}:\n{_tail(log)}"
                raise BenchError(msg)
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    msg = f"{argv[-1]} not listening after 60 s:\n{_tail(log)}"
                    raise BenchError(msg) from None
                time.sleep(0.1)
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAOPING_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env | extra


def _kaoping_env(settings: Settings) -> dict[str, str]:
    return _env({"KAOPING_DATABASE_URL": settings.database_url, "KAOPING_DEMO": "false",
                 "KAOPING_LOG_LEVEL": "warning", "KAOPING_PROJECTIONS": "external",
                 "KAOPING_SIGNING_KEY_PATH": settings.signing_key_path,
                 "KAOPING_TOKEN_KEY_PATH": settings.token_key_path,
                 # Every request comes from 127.0.0.1: one anonymous client whose budget
                 # (5/s, burst 200) would refuse the run after its burst. The budget is opened,
                 # not removed: each cast still meets the shared limiter (and its leases).
                 "KAOPING_ANONYMOUS_RATE_PER_SECOND": "1000000",
                 "KAOPING_ANONYMOUS_BURST": "1000000"})


# --- the load generator ------------------------------------------------------------------------

@dataclass
class Run:
    concurrency: int
    seconds: float
    latencies: list[float]
    statuses: Counter[int]
    bodies: list[bytes]
    server_cpu: float = 0.0  # seconds of the server process's CPU during the run
    client_cpu: float = 0.0  # seconds of this process's CPU (the load generator)

    @property
    def rate(self) -> float:
        return rate(len(self.latencies), self.seconds)


def _request(port: int, body: bytes) -> bytes:
    return (f"POST /api/v1/sessions/{SESSION}/ballots HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: bytes) -> tuple[int, bytes, bool]:
    """One request on a keep-alive connection: (status, body, server keeps it open)."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    if b"content-length" not in headers:
        msg = f"response without Content-Length: {head!r}"
        raise BenchError(msg)
    body = await reader.readexactly(int(headers[b"content-length"]))
    return int(head[9:12]), body, headers.get(b"connection") != b"close"


async def _load(port: int, requests: list[bytes], concurrency: int, limit: float) -> Run:
    pending = iter(range(len(requests)))
    latencies = [0.0] * len(requests)
    statuses: Counter[int] = Counter()
    bodies = [b""] * len(requests)
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def worker(k: int) -> None:
        reader, writer = conns[k]
        for i in pending:  # one iterator shared by all workers: each request is sent once
            started = time.perf_counter()
            status, bodies[i], keep = await _exchange(reader, writer, requests[i])
            latencies[i] = time.perf_counter() - started
            statuses[status] += 1
            if not keep:
                writer.close()
                reader, writer = conns[k] = await asyncio.open_connection(HOST, port)

    started = time.perf_counter()
    try:
        async with asyncio.timeout(limit):  # the whole run, connecting included, is bounded
            for _ in range(concurrency):
                conns.append(await asyncio.open_connection(HOST, port))
            started = time.perf_counter()
            await asyncio.gather(*(worker(k) for k in range(concurrency)))
    except TimeoutError:
        msg = f"c={concurrency}: {statuses.total()} of {len(requests)} answered in {limit} s"
        raise BenchError(msg) from None
    finally:
        for _, writer in conns:
            writer.close()
    return Run(concurrency, time.perf_counter() - started, latencies, statuses, bodies)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU so far of a process and its children (uvicorn's workers; Linux
    /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(_cpu_seconds(int(child)) for child in children)


def _measure(server: tuple[int, int], bodies: list[bytes], concurrency: int,
             limit: float) -> Run:
    port, pid = server
    requests = [_request(port, b) for b in bodies]
    server_before, client_before = _cpu_seconds(pid), time.process_time()
    result = asyncio.run(_load(port, requests, concurrency, limit))
    result.server_cpu = _cpu_seconds(pid) - server_before
    result.client_cpu = time.process_time() - client_before
    return result


def _bodies(codes: list[str], rng: random.Random) -> list[bytes]:
    return [msgspec.json.encode({"credential": code, "answers": {
        s: {i: rng.choice(OPTIONS) for i in ITEMS} for s in SUBJECTS}}) for code in codes]


# --- the session, the credentials, the checks -------------------------------------------------

def _open_session(settings: Settings, credentials: int) -> list[str]:
    """A frozen, open session with ``credentials`` one-time codes, through the service layer."""
    org = Principal(id="person:staff:bench", name="bench", role=Role.ORGANIZER,
                    acts_as=Identity(IdentityKind.STAFF, "bench"), via="bench")
    definition = msgspec.convert({
        "code": SESSION, "year": 2025, "kind": "democratic", "title": "基准测评",
        "subjects": list(SUBJECTS), "items": [{"code": i, "label": i} for i in ITEMS],
        "options": [{"code": o, "label": o, "value": v} for o, v in
                    zip(OPTIONS, ("100", "80", "60", "0"), strict=True)],
        "classes": [{"code": "raters", "label": "干部群众", "weight": "1",
                     "eligible": credentials}]}, SessionDefinition)
    services = Services(settings)
    try:
        sessions = services.sessions
        sessions.define(org, definition)
        sessions.freeze(org, SESSION)
        codes: list[str] = []
        while len(codes) < credentials:
            codes += sessions.issue(org, SESSION, "raters", min(5000, credentials - len(codes)))[1]
        sessions.open(org, SESSION)
    finally:
        services.close()
    return codes


@dataclass
class Stored:
    ballots: int = 0
    streams: int = 0
    batches: list[int] = field(default_factory=list)


def _head(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM kaoping_events"
                           ).fetchone()
        return int(row[0]) if row else 0


def _stored_since(dsn: str, mark: int) -> Stored:
    """Ballot events after ``mark``, and how many were committed per transaction (``xmin``)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT xmin::text, count(*), count(DISTINCT originator_id) FROM kaoping_events "
            "WHERE topic = %s AND notification_id > %s GROUP BY 1",
            (Ballot.Cast.TOPIC, mark)).fetchall()
    return Stored(sum(int(r[1]) for r in rows), sum(int(r[2]) for r in rows),
                  [int(r[1]) for r in rows])


def _check(run: Run, stored: Stored) -> list[str]:
    """Every request answered 201 with its own receipt; one stored ballot per request."""
    n, problems = len(run.latencies), []
    if run.statuses[201] != n:
        problems.append(f"statuses {dict(run.statuses)}; first refusal: "
                        f"{next((b for b in run.bodies if b'position' not in b), b'')[:300]!r}")
    positions = {msgspec.json.decode(b).get("position") for b in run.bodies if b"position" in b}
    if len(positions) != run.statuses[201]:
        problems.append(f"{run.statuses[201]} receipts name {len(positions)} positions")
    if stored.ballots != n or stored.streams != n:
        problems.append(f"{n} requests stored {stored.ballots} ballot events on "
                        f"{stored.streams} streams")
    return [f"c={run.concurrency}: {p}" for p in problems]


# --- the report --------------------------------------------------------------------------------

def _median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.rate)[len(runs) // 2]


def _row(name: str, runs: list[Run], ceiling: float, checks: str) -> tuple[str, ...]:
    mid = _median_run(runs)
    p50, _, p99 = percentiles(mid.latencies)
    spread = f"{min(r.rate for r in runs):,.0f}–{max(r.rate for r in runs):,.0f}"
    n = len(mid.latencies)
    return (name, str(mid.concurrency), f"{mid.rate:,.0f}", spread, f"{p50:.1f}",
            f"{p99:.1f}", f"{mid.rate / ceiling:.2f}", f"{mid.server_cpu / n * 1e6:,.0f}",
            f"{mid.client_cpu / n * 1e6:,.0f}", checks)


def _batch_row(c: int, stored: list[Stored]) -> tuple[str, ...]:
    sizes = [b for s in stored for b in s.batches]
    ballots = sum(sizes)
    return (str(c), f"{ballots:,}", f"{len(sizes):,}", f"{ballots / max(len(sizes), 1):.1f}",
            f"{statistics.median(sizes) if sizes else 0:.0f}", str(max(sizes, default=0)))


def run(*, requests: int = 3000, repeats: int = 3, warmup: int = 300,
        time_limit: int = 120, workers: tuple[int, ...] = (1, 2)) -> str:
    rng = random.Random(2025)
    per_level = repeats * requests
    rows: list[tuple[str, ...]] = []
    batches: list[tuple[str, ...]] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, scratch_postgres(Path(tmp)) as settings:
        codes = _open_session(settings, len(workers) * (warmup + len(CONCURRENCY) * per_level))
        bodies = _bodies(codes, rng)
        admin = settings.migrate_database_url or settings.database_url
        next_code = 0
        for w in workers:
            if next_code + warmup + len(CONCURRENCY) * per_level > len(bodies):
                msg = "fewer credentials than requests"
                raise BenchError(msg)
            ceiling: dict[int, list[Run]] = {c: [] for c in CONCURRENCY}
            kaoping: dict[int, list[Run]] = {c: [] for c in CONCURRENCY}
            stored: dict[int, list[Stored]] = {c: [] for c in CONCURRENCY}
            bare_argv = [sys.executable, "-m", "uvicorn", "--factory", "--no-access-log",
                         "--no-server-header", "--log-level", "warning", "--workers", str(w),
                         "bench.ballots:ceiling_app"]
            with _serving(bare_argv, _env({}), Path(tmp) / f"ceiling-{w}.log") as bare, \
                    _serving([str(KAOPING), "serve", "--workers", str(w)],
                             _kaoping_env(settings), Path(tmp) / f"serve-{w}.log") as served:
                warming = bodies[next_code:next_code + warmup]  # the ceiling stores nothing
                next_code += warmup
                for name, server in (("ceiling", bare), ("kaoping", served)):
                    warm = _measure(server, warming, 8, time_limit)
                    if warm.statuses[201] != warmup:
                        problems.append(f"warm-up of {name} ×{w}: statuses "
                                        f"{dict(warm.statuses)}")
                for _ in range(repeats):
                    for c in CONCURRENCY:
                        chunk = bodies[next_code:next_code + requests]
                        next_code += requests
                        ceiling[c].append(_measure(bare, chunk, c, time_limit))
                        mark = _head(admin)
                        kp = _measure(served, chunk, c, time_limit)
                        kaoping[c].append(kp)
                        stored[c].append(_stored_since(admin, mark))
                        problems += [f"×{w} {p}" for p in _check(kp, stored[c][-1])]
            rows += [_row(f"bare Litestar ×{w} (ceiling)", ceiling[c],
                          _median_run(ceiling[c]).rate, "no storage") for c in CONCURRENCY]
            for c in CONCURRENCY:
                ok = not any(p.startswith(f"×{w} c={c}:") for p in problems)
                rows.append(_row(f"kaoping serve --workers {w}", kaoping[c],
                                 _median_run(ceiling[c]).rate,
                                 f"{'ok' if ok else 'FAILED'}: {len(kaoping[c])} × "
                                 f"{requests:,} sent, {sum(s.ballots for s in stored[c]):,} "
                                 "stored"))
            batches += [(f"×{w}", *_batch_row(c, stored[c])) for c in CONCURRENCY]
    header = ("server", "c", "ballots/s", f"range of {repeats}", "p50 ms", "p99 ms",
              "÷ ceiling", "server CPU µs/req", "client CPU µs/req",
              "checks (all 201, stored = sent, distinct receipts)")
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    parser = "httptools" if importlib.util.find_spec("httptools") else "h11"
    notes = [
        f"{os.cpu_count()} cores, nothing pinned: the load generator (this process, raw "
        "keep-alive HTTP/1.1, one connection per concurrent request), both uvicorn servers "
        "and PostgreSQL share them, so the client's CPU is taken from the servers. ×w: w "
        "uvicorn worker processes for both the ceiling and Kaoping (each ratio is against the "
        f"ceiling with as many workers), loop {loop}, HTTP parser {parser}. Kaoping: "
        "projections external (no follower or checkpoint signer in the API processes; each "
        "worker has its own group-commit writer), the application role. Rate, "
        f"latency and CPU are those of the median of {repeats} run(s) by rate; the ceiling and "
        "Kaoping alternate. Server CPU is the uvicorn processes' (user + system, /proc); "
        "PostgreSQL's is not counted. The anonymous budget of the one client address is "
        "opened (KAOPING_ANONYMOUS_RATE_PER_SECOND/BURST = 1e6): it still checks every cast.",
        "",
        *(f"**Problem:** {p}" for p in problems),
    ]
    return "\n".join([
        table(f"Ballot casting over HTTP on PostgreSQL ({requests:,} requests per run)", rows,
              header),
        *notes,
        "",
        table("Group-commit batches (ballots per commit transaction, from xmin)", batches,
              ("workers", "c", "ballots", "transactions", "mean", "median", "max")),
    ])
