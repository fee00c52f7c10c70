"""A streaming replica made with ``pg_basebackup -R`` on this machine, serving reads.

A private primary cluster (initdb, as the fault drills make one) runs ``kaoping serve``; a base
backup of it with ``-R`` on another port is a hot standby replaying the primary's WAL; a second
``kaoping serve`` with KAOPING_READ_ONLY=true against the standby serves public reads and the
ledger's proofs, ``kaoping verify-log`` checks the log there, writes are refused (503,
replica.read-only), and a ``min_position`` the standby has not replayed yet is waited for, then
answered 503 + Retry-After (replica.behind) while replay is paused — never a stale 200.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from litestar.testing import TestClient
from psycopg import sql

from api import create_app
from domain.errors import Conflict
from service.clock import FixedClock
from service.evidence import bundle_checkpoint
from service.migrate import migrate
from service.principals import Identity, IdentityKind, Role
from service.runtime import Services
from service.settings import Settings
from tests.e2e.live_server import HOST, KAOPING, free_port, http, process
from tests.e2e.test_corrections import published_cycle
from tests.e2e.test_cycle_scenario import BASE, Y
from tests.e2e.test_fault_drills import Cluster, Server, _env


@dataclass
class Pair:
    primary: Cluster
    replica: Cluster
    root: Path


def _pg(*args: str) -> None:
    done = subprocess.run(["runuser", "-u", "postgres", "--", *args],  # noqa: S607
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def pair() -> Iterator[Pair]:
    root = Path(tempfile.mkdtemp(prefix="kaoping-replica-pg-"))
    shutil.chown(root, "postgres", "postgres")
    primary = Cluster(root / "primary", free_port())
    _pg("initdb", "-D", str(primary.data), "-A", "trust", "-U", "postgres", "--no-sync")
    with (primary.data / "postgresql.conf").open("a") as conf:
        conf.write("listen_addresses = '127.0.0.1'\nmax_connections = 40\n"
                   "wal_level = replica\nmax_wal_senders = 4\n")
    primary.ctl("start")
    replica = Cluster(root / "replica", free_port())
    try:
        yield Pair(primary, replica, root)
    finally:
        for cluster in (replica, primary):
            subprocess.run(["runuser", "-u", "postgres", "--", "pg_ctl", "-D",  # noqa: S607
                            str(cluster.data), "-m", "immediate", "stop"],
                           capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def _serving(tmp: Path, name: str, env: dict[str, str]) -> Iterator[Server]:
    port, log = free_port(), tmp / f"{name}.log"
    url = f"http://{HOST}:{port}"
    with process(["serve", "--port", str(port)], env, tmp, log, health=url) as proc:
        yield Server(url, proc, log)


def _write_units(url: str, auth: dict[str, str], codes: range) -> int:
    position = -1
    for i in codes:
        status, answer = http("POST", f"{url}/api/v1/units", {
            "code": f"RP-{i:02d}", "name": f"乡镇{i}", "kind": "township",
            "category": "platform-1"}, auth)
        assert status == 201, answer
        position = max(r["position"] for r in answer["receipt"])
    return position


def test_a_streaming_replica_serves_reads_and_refuses_writes(pair: Pair, tmp_path: Path) -> None:
    with psycopg.connect(pair.primary.url("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("city")))
    tag = secrets.token_hex(3)
    settings = Settings(database_url=pair.primary.url("city", f"kp_app_{tag}"),
                        migrate_database_url=pair.primary.url("city"),
                        db_owner_role=f"kp_owner_{tag}", db_app_role=f"kp_app_{tag}",
                        signing_key_path=str(tmp_path / "ledger.key"),
                        token_key_path=str(tmp_path / "token.key"),
                        console_key_path=str(tmp_path / "console.key"))
    migrate(settings)
    services = Services(settings, clock=FixedClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC)))
    try:
        now = datetime.now(UTC)  # the servers' clock, for their tokens
        token = services.tokens.issue(role=Role.ORGANIZER, acts_as=Identity(
            IdentityKind.STAFF, "replica"), name="replica", now=now)
        supervisor = {"Authorization": "Bearer " + services.tokens.issue(
            role=Role.SUPERVISOR, acts_as=Identity(IdentityKind.STAFF, "sup-1"), name="sup-1",
            now=now)}
        with TestClient(app=create_app(settings, services=services)) as client:
            published_cycle(client, services)  # a published cycle, for evidence bundles
        services.follower.catch_up()
        services.signer.sign(services.db, services.clock.now())
        vkey = services.signer.vkey
    finally:
        services.close()
    auth = {"Authorization": f"Bearer {token}"}
    replica_settings = settings.with_overrides(
        database_url=pair.replica.url("city", f"kp_app_{tag}"), read_only=True,
        primary_url="https://kaoping.example.gov.cn")
    with _serving(tmp_path, "primary", _env(settings) | {
            "KAOPING_CONSOLE_KEY_PATH": settings.console_key_path}) as primary:
        head = _write_units(primary.url, auth, range(5))
        # The standby: a base backup of the running primary, -R writing its connection.
        _pg("pg_basebackup", "-h", HOST, "-p", str(pair.primary.port), "-U", "postgres",
            "-D", str(pair.replica.data), "-R", "-X", "stream", "--no-sync")
        pair.replica.ctl("start")
        with psycopg.connect(pair.replica.url("city"), autocommit=True) as standby:
            row = standby.execute("SELECT pg_is_in_recovery()").fetchone()
            assert row == (True,)
        env = _env(replica_settings) | {"KAOPING_READ_ONLY": "true",
                                        "KAOPING_PRIMARY_URL": "https://kaoping.example.gov.cn",
                                        "KAOPING_CONSOLE_KEY_PATH": settings.console_key_path}
        with _serving(tmp_path, "replica", env) as replica:
            # public reads, read-your-writes across the pair (waited for: replay is quick)
            status, page = http("GET", f"{replica.url}/api/v1/units?min_position={head}")
            assert status == 200, page
            assert {f"RP-{i:02d}" for i in range(5)} <= {u["code"] for u in page["items"]}
            status, checkpoint = http("GET", f"{replica.url}/api/v1/ledger/checkpoint")
            assert status == 200, checkpoint
            # writes are refused, naming the rule and the primary
            status, refused = http("POST", f"{replica.url}/api/v1/units", {
                "code": "RP-99", "name": "乡镇", "kind": "township",
                "category": "platform-1"}, auth)
            assert status == 503, refused
            assert refused["rule"] == "replica.read-only"
            assert "kaoping.example.gov.cn" in refused["detail"]
            # a position the standby has not replayed: waited for, then 503 + Retry-After
            with psycopg.connect(pair.replica.url("city"), autocommit=True) as standby:
                standby.execute("SELECT pg_wal_replay_pause()")
                later = _write_units(primary.url, auth, range(5, 7))
                status, behind = http("GET",
                                      f"{replica.url}/api/v1/units?min_position={later}")
                assert status == 503, behind
                assert behind["rule"] == "replica.behind"
                standby.execute("SELECT pg_wal_replay_resume()")
            status, page = http("GET", f"{replica.url}/api/v1/units?min_position={later}")
            assert status == 200, page
            assert {f"RP-{i:02d}" for i in range(7)} <= {u["code"] for u in page["items"]}
            # an evidence bundle over HTTP records the access: a standby cannot, so it refuses
            status, sealed = http("GET", f"{replica.url}{BASE}/subjects/cadre:P1/evidence",
                                  None, supervisor)
            assert status == 503, sealed
            assert sealed["rule"] == "replica.read-only"
            # the operator's bundle from the standby, against the newest replicated checkpoint
            bundle = tmp_path / "bundle.json"
            made = subprocess.run([str(KAOPING), "evidence", "cadre:P1", "--cycle", str(Y),
                                   "-o", str(bundle)], env=env, cwd=tmp_path,
                                  capture_output=True, text=True, timeout=120, check=False)
            assert made.returncode == 0, made.stdout + made.stderr
            verified = subprocess.run([str(KAOPING), "verify", str(bundle), "--key", vkey],
                                      env=env, cwd=tmp_path, capture_output=True, text=True,
                                      timeout=120, check=False)
            assert verified.returncode == 0, verified.stdout + verified.stderr
            ready = http("GET", f"{replica.url}/ready")
            assert ready[0] == 200, ready
    # the log verified on the standby (the primary is stopped: nothing else to read)
    checked = subprocess.run([str(KAOPING), "verify-log"], env=_env(replica_settings),
                             cwd=tmp_path, capture_output=True, text=True, timeout=120,
                             check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_replica_without_a_checkpoint_makes_no_bundle(pg_settings: Settings) -> None:
    services = Services(pg_settings.with_overrides(read_only=True))
    try:
        with pytest.raises(Conflict) as refused:
            bundle_checkpoint(services)
    finally:
        services.close()
    assert refused.value.rule == "replica.no-checkpoint"
