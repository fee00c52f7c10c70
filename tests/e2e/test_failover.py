"""Failover with pg_auto_failover, on this machine (Debian's postgresql-*-auto-failover).

A formation of a monitor and two data nodes, each a pg_autoctl keeper run as the postgres OS
user in a temporary directory (the monitor's health checks and demotion timeout shortened so
the drill takes seconds, not half a minute). ``kaoping serve`` runs on a multi-host URL with
``target_session_attrs=read-write`` (docs/operations.md, "Failover with pg_auto_failover"),
the secondary listed first, so every connection has to find the primary by itself. A ballot
load runs; the primary's keeper and PostgreSQL are killed mid-load; the monitor promotes the
secondary. Then: never a 500 (a cast in flight waits for the new primary — the store retries
a lost connection — or answers 503); ballots are acknowledged after the promotion without
restarting the server (its pools, the event library's included, reconnect to the new
primary); every acknowledged receipt is on the new primary (synchronous replication); every
cut-off ballot, retried, is stored once; every ballot is stored once; ``verify-log`` passes on
the new primary.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import psycopg
import pytest
from psycopg import sql

from bench.ballots import SESSION, _bodies, _open_session
from tests.e2e.live_server import HOST, free_port, http
from tests.e2e.test_fault_drills import (
    BALLOTS,
    KILL_AFTER,
    Load,
    _join,
    _missing_receipts,
    _serving,
    drill_database,
    every_ballot_once_and_log_verified,
)

# The monitor's settings for a drill: a node is unhealthy after 3 s without a report, and a
# promoted secondary waits 3 s (not 30) for the old primary to have demoted itself.
MONITOR_SETTINGS = {
    "pgautofailover.health_check_period": "1000",
    "pgautofailover.health_check_timeout": "1000",
    "pgautofailover.health_check_retry_delay": "500",
    "pgautofailover.node_considered_unhealthy_timeout": "3000",
    "pgautofailover.primary_demote_timeout": "3000",
}


def _bindir() -> Path:
    """The newest PostgreSQL's binaries that have pg_auto_failover's extension beside them."""
    found = sorted((p.parent.parent.name for p in Path("/usr/share/postgresql").glob(
        "*/extension/pgautofailover.control") if p.parent.parent.name.isdigit()), key=int)
    if not found or shutil.which("pg_autoctl") is None:  # a missing dependency fails the test
        pytest.fail("pg_auto_failover is not installed: `sudo scripts/system-deps` installs "
                    "postgresql-<version>-auto-failover and pg-auto-failover-cli")
    return Path(f"/usr/lib/postgresql/{found[-1]}/bin")


@dataclass
class Formation:
    root: Path
    bindir: Path
    monitor_port: int
    ports: dict[str, int]  # node name -> port
    keepers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {"PATH": f"{self.bindir}{os.pathsep}{os.environ.get('PATH', '')}",
                "XDG_CONFIG_HOME": str(self.root / "config"),
                "XDG_DATA_HOME": str(self.root / "share"),
                "XDG_RUNTIME_DIR": str(self.root / "run"), "LANG": "C.UTF-8"}

    def keeper(self, name: str, *args: str) -> None:
        """``pg_autoctl create … --run`` as the postgres OS user, in the background."""
        with (self.root / f"{name}.log").open("wb") as log:
            self.keepers[name] = subprocess.Popen(
                ["/usr/sbin/runuser", "-u", "postgres", "--", "/usr/bin/env",
                 *(f"{k}={v}" for k, v in self.env().items()),
                 "pg_autoctl", "create", *args, "--pgdata", str(self.root / name),
                 "--pgctl", str(self.bindir / "pg_ctl"), "--auth", "trust", "--no-ssl",
                 "--hostname", HOST, "--run"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-3000:]

    def monitor_url(self) -> str:
        return f"postgresql://autoctl_node@{HOST}:{self.monitor_port}/pg_auto_failover"

    def url(self, db: str, user: str = "postgres", order: tuple[str, ...] = ("b", "a")) -> str:
        hosts = ",".join(f"{HOST}:{self.ports[n]}" for n in order)
        return f"postgresql://{user}@{hosts}/{db}?target_session_attrs=read-write"

    def states(self) -> dict[str, str]:
        """Node name -> the state the monitor reports for it."""
        with psycopg.connect(f"postgresql://postgres@{HOST}:{self.monitor_port}/"
                             "pg_auto_failover", connect_timeout=3) as conn:
            rows = conn.execute("SELECT nodename, reportedstate::text FROM "
                                "pgautofailover.node").fetchall()
        return {str(n): str(s) for n, s in rows}

    def wait(self, want: dict[str, str], timeout: float = 120) -> None:
        deadline, seen = time.monotonic() + timeout, {}
        while time.monotonic() < deadline:
            try:
                seen = self.states()
            except psycopg.OperationalError:
                seen = {}
            if all(seen.get(n) == s for n, s in want.items()):
                return
            time.sleep(0.5)
        logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                         for p in sorted(self.root.glob("*.log")))
        pytest.fail(f"the formation did not reach {want} in {timeout} s (it is {seen})\n{logs}")

    def writable(self, name: str) -> bool:
        try:
            with psycopg.connect(f"postgresql://postgres@{HOST}:{self.ports[name]}/postgres",
                                 connect_timeout=2) as conn:
                row = conn.execute("SHOW transaction_read_only").fetchone()
        except psycopg.OperationalError:
            return False
        return row is not None and row[0] == "off"

    def kill(self, name: str) -> None:
        """The node's machine dies: its keeper and its PostgreSQL, at once."""
        keeper = self.keepers.pop(name)
        os.killpg(keeper.pid, signal.SIGKILL)
        keeper.wait(timeout=15)
        subprocess.run(["/usr/sbin/runuser", "-u", "postgres", "--",
                        str(self.bindir / "pg_ctl"), "-D", str(self.root / name), "-m",
                        "immediate", "stop"],
                       capture_output=True, timeout=60, check=False)


@pytest.fixture
def formation() -> Iterator[Formation]:
    bindir = _bindir()
    root = Path(tempfile.mkdtemp(prefix="kaoping-failover-"))
    shutil.chown(root, "postgres", "postgres")
    paf = Formation(root, bindir, free_port(), {"a": free_port(), "b": free_port()})
    try:
        paf.keeper("monitor", "monitor", "--pgport", str(paf.monitor_port))
        deadline = time.monotonic() + 90
        while True:  # the monitor's database answers
            try:
                with psycopg.connect(f"postgresql://postgres@{HOST}:{paf.monitor_port}/"
                                     "pg_auto_failover", autocommit=True,
                                     connect_timeout=2) as conn:
                    for name, value in MONITOR_SETTINGS.items():
                        conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(
                            sql.Identifier(*name.split(".")), sql.Literal(value)))
                    conn.execute("SELECT pg_reload_conf()")
                break
            except psycopg.OperationalError:
                assert paf.keepers["monitor"].poll() is None, paf.log("monitor")
                assert time.monotonic() < deadline, paf.log("monitor")
                time.sleep(0.5)
        for name in ("a", "b"):  # a first: it becomes the primary, b its secondary
            paf.keeper(name, "postgres", "--name", name, "--pgport", str(paf.ports[name]),
                       "--monitor", f"{paf.monitor_url()}?sslmode=disable")
            paf.wait({"a": "single"} if name == "a" else {"a": "primary", "b": "secondary"})
        yield paf
    finally:
        for name in list(paf.keepers):
            paf.kill(name)
        shutil.rmtree(root, ignore_errors=True)


def test_drill_failover_with_pg_auto_failover_mid_ballot_load(formation: Formation,
                                                              tmp_path: Path) -> None:
    settings = drill_database(formation.url, tmp_path)
    codes = _open_session(settings, BALLOTS)
    bodies = _bodies(codes, random.Random(13))
    with _serving(settings, tmp_path) as server:
        load = Load(server.url, bodies)
        threads = load.run(threads=4)
        load.wait_for(KILL_AFTER)
        formation.kill("a")
        before = len(load.acked)
        formation.wait({"b": "wait_primary"})
        promoted = len(load.acked)
        assert formation.writable("b")
        _join(threads)
        print(f"failover drill: {before} acknowledged before the kill, {promoted} at the "
              f"promotion, {len(load.acked)} in all; {len(load.failed)} cut off; statuses "
              f"{sorted(set(load.statuses))}")
        assert len(load.acked) > promoted, "no ballot was acknowledged after the failover"
        assert set(load.statuses) <= {201, 503, 0}, sorted(set(load.statuses))
        for body in load.failed:  # retried on the new primary: each is stored exactly once
            status, _ = http("POST", f"{server.url}/api/v1/sessions/{SESSION}/ballots",
                             msgspec.json.decode(body))
            assert status in (201, 409)  # 409: stored before its answer was lost (below)
        assert http("GET", f"{server.url}/ready")[0] == 200
    new_primary = formation.url("drill", order=("b",))
    assert _missing_receipts(new_primary, load.acked) == []  # synchronous: nothing lost
    every_ballot_once_and_log_verified(new_primary, settings, tmp_path)
