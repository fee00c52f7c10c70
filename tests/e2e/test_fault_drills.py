"""Fault drills on PostgreSQL with the real server as a subprocess (``kaoping serve``):

1. ``kill -9`` of the server mid-load of ballot casting: every acknowledged receipt is in the
   log afterwards at its position with its leaf hash (the tracker), and a retry after the
   restart is refused as a used credential (never a second ballot);
2. PostgreSQL restarted (immediate shutdown, as a crash) mid-load, on a private throwaway
   cluster made here with initdb/pg_ctl: the server recovers without a restart of its own,
   and every acknowledged receipt is there;
3. the log's tail deleted (a restore from an old backup) and 4. a stored tree node changed:
   ``kaoping verify-log`` names each, and the restarted server refuses writes and is not ready.
"""

from __future__ import annotations

import base64
import os
import random
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from psycopg import sql

from bench.ballots import SESSION, _bodies, _open_session
from service.migrate import migrate
from service.principals import Identity, IdentityKind, Role
from service.runtime import Services
from service.settings import Settings
from tests.e2e.live_server import HOST, KAOPING, REPO, free_port, http, process

BALLOTS = 240
KILL_AFTER = 60  # acknowledged receipts before the fault


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAOPING_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env | {
        "KAOPING_DATABASE_URL": settings.database_url, "KAOPING_DEMO": "false",
        "KAOPING_SIGNING_KEY_PATH": settings.signing_key_path,
        "KAOPING_TOKEN_KEY_PATH": settings.token_key_path,
        "KAOPING_CHECKPOINT_INTERVAL_SECONDS": "0.5", "KAOPING_LOG_LEVEL": "warning",
        "KAOPING_RATE_LIMIT_PER_SECOND": "1000000",
        # The drills cast a whole session's ballots from one address as fast as they can; the
        # anonymous throttle (sized for a polling room) has tests of its own.
        "KAOPING_ANONYMOUS_BURST": "1000000", "KAOPING_ANONYMOUS_RATE_PER_SECOND": "1000000"}


@contextmanager
def _serving(settings: Settings, tmp: Path, name: str = "serve") -> Iterator[Server]:
    port, log = free_port(), tmp / f"{name}.log"
    url = f"http://{HOST}:{port}"
    with process(["serve", "--port", str(port)], _env(settings), tmp, log, health=url) as proc:
        yield Server(url, proc, log)


@dataclass
class Load:
    """Ballots cast by a few threads; ``acked`` holds every 201 receipt (body, answer)."""

    url: str
    bodies: list[bytes]
    acked: list[tuple[bytes, dict[str, Any]]] = field(default_factory=list)
    failed: list[bytes] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, threads: int = 6) -> list[threading.Thread]:
        work = iter(self.bodies)

        def worker() -> None:
            while True:
                with self.lock:
                    body = next(work, None)
                if body is None:
                    return
                try:
                    status, answer = http("POST", f"{self.url}/api/v1/sessions/{SESSION}/ballots",
                                          msgspec.json.decode(body))
                except (urllib.error.URLError, OSError, HTTPException):
                    status, answer = 0, None  # cut off mid-answer: not acknowledged
                with self.lock:
                    self.statuses.append(status)
                    if status == 201:
                        self.acked.append((body, answer))
                    else:
                        self.failed.append(body)

        started = [threading.Thread(target=worker) for _ in range(threads)]
        for thread in started:
            thread.start()
        return started

    def wait_for(self, acked: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < acked:
            assert time.monotonic() < deadline, f"only {len(self.acked)} acknowledged"
            time.sleep(0.01)


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(timeout=180)
        assert not thread.is_alive()


def _missing_receipts(dsn: str, acked: list[tuple[bytes, dict[str, Any]]]) -> list[str]:
    """Every acknowledged receipt whose position does not hold its tracker (leaf hash)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT position, leaf_hash FROM kaoping_ledger").fetchall()
    leaves = {int(p): bytes(h) for p, h in rows}
    return [f"position {a['position']}" for _, a in acked
            if leaves.get(a["position"]) != base64.b64decode(a["tracker"])]


def _verify_log(settings: Settings, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KAOPING), "verify-log"], env=_env(settings), cwd=tmp,
                          capture_output=True, text=True, timeout=120, check=False)


def every_ballot_once_and_log_verified(dsn: str, settings: Settings, tmp: Path) -> None:
    """After a drill: the session's every ballot stored exactly once (at ``dsn``), and
    ``kaoping verify-log`` passes on the store."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM kaoping_events WHERE topic LIKE %s",
                           ("%Ballot.Cast%",)).fetchone()
    assert row is not None
    assert row[0] == BALLOTS
    checked = _verify_log(settings, tmp)
    assert checked.returncode == 0, checked.stderr


def test_drill_kill_9_mid_ballot_load(pg_settings: Settings, tmp_path: Path) -> None:
    codes = _open_session(pg_settings, BALLOTS)
    bodies = _bodies(codes, random.Random(7))
    with _serving(pg_settings, tmp_path) as server:
        load = Load(server.url, bodies)
        threads = load.run()
        load.wait_for(KILL_AFTER)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=15)
        _join(threads)
    assert len(load.acked) >= KILL_AFTER
    assert load.failed, "the kill came after the load had finished"
    assert _missing_receipts(pg_settings.database_url, load.acked) == []
    with _serving(pg_settings, tmp_path, "restarted") as server:
        for body, _first in load.acked[:10]:  # a voter who retries: used, whatever it says
            status, again = http("POST", f"{server.url}/api/v1/sessions/{SESSION}/ballots",
                                 msgspec.json.decode(body))
            assert (status, again["rule"]) == (409, "ballot.credential-used")
        for body in load.failed:  # unanswered ones: cast now (or used, if the kill hid a 201;
            status, _ = http("POST", f"{server.url}/api/v1/sessions/{SESSION}/ballots",
                             msgspec.json.decode(body))  # every ballot once: checked below)
            assert status in (201, 409)
        assert http("GET", f"{server.url}/ready")[1]["ledger"] == "ok"
    every_ballot_once_and_log_verified(pg_settings.database_url, pg_settings, tmp_path)


# --- a private PostgreSQL cluster, restarted mid-load ------------------------------------------

@dataclass
class Cluster:
    data: Path
    port: int

    def ctl(self, *args: str) -> None:
        done = subprocess.run(["runuser", "-u", "postgres", "--", "pg_ctl", "-D",  # noqa: S607
                               str(self.data), "-w", "-l", str(self.data / "server.log"),
                               "-o", f"-p {self.port} -k {self.data}", *args],
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr

    def url(self, db: str, user: str = "postgres") -> str:
        return f"postgresql://{user}@{HOST}:{self.port}/{db}"


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """initdb + pg_ctl under a fresh temporary directory, as the postgres OS user (initdb
    refuses root); trust auth on 127.0.0.1 only. Stopped and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="kaoping-drill-pg-"))
    data = root / "data"
    shutil.chown(root, "postgres", "postgres")
    done = subprocess.run(["runuser", "-u", "postgres", "--", "initdb", "-D", str(data),  # noqa: S607
                           "-A", "trust", "-U", "postgres", "--no-sync"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    with (data / "postgresql.conf").open("a") as conf:
        conf.write("listen_addresses = '127.0.0.1'\nfsync = on\nmax_connections = 40\n")
    pg = Cluster(data, free_port())
    pg.ctl("start")
    try:
        yield pg
    finally:
        subprocess.run(["runuser", "-u", "postgres", "--", "pg_ctl", "-D", str(data),  # noqa: S607
                        "-m", "immediate", "stop"], capture_output=True, timeout=60,
                       check=False)
        shutil.rmtree(root, ignore_errors=True)


def drill_database(url: Callable[..., str], tmp: Path) -> Settings:
    """A ``drill`` database on a drill's own cluster, migrated with roles of its own;
    ``url(db, user=…)`` names it there."""
    with psycopg.connect(url("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("drill")))
    tag = secrets.token_hex(3)
    settings = Settings(database_url=url("drill", user=f"kp_app_{tag}"),
                        migrate_database_url=url("drill"),
                        db_owner_role=f"kp_owner_{tag}", db_app_role=f"kp_app_{tag}",
                        signing_key_path=str(tmp / "ledger.key"),
                        token_key_path=str(tmp / "token.key"), projections="external")
    migrate(settings)
    return settings


def test_drill_postgres_restart_mid_ballot_load(cluster: Cluster, tmp_path: Path) -> None:
    settings = drill_database(cluster.url, tmp_path)
    codes = _open_session(settings, BALLOTS)
    bodies = _bodies(codes, random.Random(11))
    with _serving(settings, tmp_path) as server:
        load = Load(server.url, bodies)
        threads = load.run()
        load.wait_for(KILL_AFTER)
        cluster.ctl("-m", "immediate", "restart")  # a crash of the database, then recovery
        before = len(load.acked)
        _join(threads)
        assert len(load.acked) > before, "no ballot was acknowledged after the restart"
        assert 500 not in load.statuses  # during the outage: 503s, never a bare 500
        for body in load.failed:  # retried after the outage: each is stored exactly once
            status, _ = http("POST", f"{server.url}/api/v1/sessions/{SESSION}/ballots",
                             msgspec.json.decode(body))
            assert status in (201, 409)  # 409: stored before its answer was lost (below)
        assert http("GET", f"{server.url}/ready")[0] == 200
    assert _missing_receipts(settings.database_url, load.acked) == []
    every_ballot_once_and_log_verified(settings.database_url, settings, tmp_path)


# --- tail truncation and node tamper, against the restarted server ------------------------------

def _signed_log(settings: Settings, tmp: Path, events: int) -> tuple[str, int]:
    """Write ``events`` units through the server and wait until a checkpoint covers them."""
    services = Services(settings)
    try:
        token = services.tokens.issue(role=Role.ORGANIZER, acts_as=Identity(
            IdentityKind.STAFF, "drill"), name="drill", now=services.clock.now())
    finally:
        services.close()
    auth = {"Authorization": f"Bearer {token}"}
    with _serving(settings, tmp) as server:
        for i in range(events):
            status, answer = http("POST", f"{server.url}/api/v1/units", {
                "code": f"DR-{i:02d}", "name": f"Drill {i}", "kind": "department",
                "category": "vertical"}, auth)
            assert status == 201, answer
        deadline = time.monotonic() + 30
        while True:
            _, note = http("GET", f"{server.url}/api/v1/ledger/checkpoint")
            if isinstance(note, bytes) and note.split(b"\n")[1] == str(events).encode():
                break
            assert time.monotonic() < deadline, note
            time.sleep(0.2)
    return token, events


def _superuser(settings: Settings) -> psycopg.Connection[Any]:
    assert settings.migrate_database_url is not None
    conn = psycopg.connect(settings.migrate_database_url, autocommit=True)
    conn.execute("SET session_replication_role = replica")  # triggers off: an administrator
    return conn


def test_drill_tail_truncated_by_a_restore(pg_settings: Settings, tmp_path: Path) -> None:
    token, size = _signed_log(pg_settings, tmp_path, 18)
    keep = 12
    with _superuser(pg_settings) as conn:
        conn.execute("DELETE FROM kaoping_events WHERE notification_id IN (SELECT "
                     "notification_id FROM kaoping_ledger WHERE position >= %s)", (keep,))
        conn.execute("DELETE FROM kaoping_ledger WHERE position >= %s", (keep,))
        conn.execute("DELETE FROM kaoping_checkpoints WHERE size > %s", (keep,))
        conn.execute("DELETE FROM kaoping_tree_nodes WHERE (idx + 1) * (1::bigint << level) "
                     "> %s", (keep,))
    checked = _verify_log(pg_settings, tmp_path)
    assert checked.returncode == 1
    assert f"the log holds {keep} leaves but this deployment's signer signed a tree of size " \
           f"{size}" in checked.stderr
    with _serving(pg_settings, tmp_path, "after-restore") as server:
        status, ready = http("GET", f"{server.url}/ready")
        assert (status, ready["ready"], ready["ledger"]) == (503, False, "ledger.rolled-back")
        status, problem = http("POST", f"{server.url}/api/v1/units", {
            "code": "DR-99", "name": "after", "kind": "department", "category": "vertical"},
            {"Authorization": f"Bearer {token}"})
        assert (status, problem["rule"]) == (503, "ledger.rolled-back")
        assert f"positions {keep}..{size - 1} were acknowledged and are gone" in (
            problem["detail"])
    with psycopg.connect(pg_settings.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM kaoping_ledger").fetchone()
    assert row == (keep,)  # no position re-issued


def test_drill_a_tree_node_changed(pg_settings: Settings, tmp_path: Path) -> None:
    token, size = _signed_log(pg_settings, tmp_path, 18)  # root rests on (4, 0) and (1, 8)
    with _superuser(pg_settings) as conn:
        conn.execute("UPDATE kaoping_tree_nodes SET hash = %s WHERE level = 4 AND idx = 0",
                     (bytes(32),))
    checked = _verify_log(pg_settings, tmp_path)
    assert checked.returncode == 1
    assert "tree node level 4 index 0 (leaves 0..15) does not match the hash of its leaves" in (
        checked.stderr)
    with _serving(pg_settings, tmp_path, "after-tamper") as server:
        status, ready = http("GET", f"{server.url}/ready")
        assert (status, ready["ledger"]) == (503, "ledger.node-changed")
        status, problem = http("POST", f"{server.url}/api/v1/units", {
            "code": "DR-98", "name": "after", "kind": "department", "category": "vertical"},
            {"Authorization": f"Bearer {token}"})
        assert (status, problem["rule"]) == (503, "ledger.node-changed")
    assert size == 18
