"""Several API processes and one projection worker against one PostgreSQL primary, as real
processes (``kaoping serve`` twice, ``kaoping project`` once): concurrent writes through both
API processes land at dense, distinct log positions; one worker holds the signer lease and
signs every checkpoint; the read models catch up. And a second signer waits for the lease."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from service.clock import FixedClock
from service.ledger.signer import _LEASE_KEY, SignerLease
from service.principals import IdentityKind, Role
from service.runtime import Services
from service.settings import Settings
from tests.conftest import bearer
from tests.e2e.live_server import HOST, KAOPING, REPO, free_port, http, process, wait_until

PER_PROCESS = 25


def _env(settings: Settings, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAOPING_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env | {
        "KAOPING_DATABASE_URL": settings.database_url, "KAOPING_DEMO": "false",
        "KAOPING_SIGNING_KEY_PATH": settings.signing_key_path,
        "KAOPING_TOKEN_KEY_PATH": settings.token_key_path,
        "KAOPING_CONSOLE_KEY_PATH": str(tmp / "console.key"),
        "KAOPING_PROJECTIONS": "external", "KAOPING_CHECKPOINT_INTERVAL_SECONDS": "0.5",
        "KAOPING_LOG_LEVEL": "info", "KAOPING_LOG_FORMAT": "json",
        "KAOPING_RATE_LIMIT_PER_SECOND": "1000000"}


@contextmanager
def _process(args: list[str], env: dict[str, str], tmp: Path, name: str,
             health: str | None = None) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    log = tmp / f"{name}.log"
    with process(args, env, tmp, log, health=health) as proc:
        yield log, proc


def test_two_api_processes_and_one_worker_on_one_primary(pg_settings: Settings,
                                                        tmp_path: Path) -> None:
    env = _env(pg_settings, tmp_path)
    local = Services(pg_settings, clock=FixedClock(datetime.now(UTC)))  # tokens, SQL checks
    try:
        organizer = {**bearer(local, Role.ORGANIZER, IdentityKind.STAFF, "org-1"),
                     "content-type": "application/json"}
        urls = [f"http://{HOST}:{free_port()}" for _ in range(2)]
        with ExitStack() as stack:
            stack.enter_context(_process(["project"], env, tmp_path, "project"))
            for i, url in enumerate(urls):
                stack.enter_context(_process(["serve", "--port", url.rsplit(":", 1)[1]],
                                             env, tmp_path, f"serve{i}", health=url))
            positions: list[int] = []
            problems: list[str] = []
            lock = threading.Lock()

            def write(i: int, url: str) -> None:
                for n in range(PER_PROCESS):
                    body = {"code": f"P{i}-{n:02d}", "name": f"乡镇{i}-{n}",
                            "kind": "township", "category": "platform-1"}
                    status, answer = http("POST", f"{url}/api/v1/units", body, organizer)
                    with lock:
                        if status != 201:
                            problems.append(f"{status} {answer}")
                        else:
                            positions.extend(r["position"] for r in answer["receipt"])

            threads = [threading.Thread(target=write, args=(i, url))
                       for i, url in enumerate(urls)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert problems == []
            assert len(positions) == len(set(positions)) == 2 * PER_PROCESS  # no duplicate
            head = max(positions)
            with local.db.read() as cur:  # no missing position either: dense from 0
                cur.execute("SELECT count(*), min(position), max(position) FROM kaoping_ledger")
                row = cur.fetchone()
            assert row is not None
            assert (int(row[0]), int(row[1]), int(row[2])) == (head + 1, 0, head)
            for url in urls:  # the worker's read models caught up, seen through both
                status, answer = http("GET", f"{url}/api/v1/units?min_position={head}&limit=200",
                                      None, organizer)
                assert status == 200, answer
                assert len(answer["items"]) == 2 * PER_PROCESS

            def signed_to_head() -> bool:
                with local.db.read() as cur:
                    cur.execute("SELECT max(size) FROM kaoping_checkpoints")
                    got = cur.fetchone()
                return got is not None and got[0] == head + 1

            wait_until("a checkpoint of the whole log", signed_to_head)
            with local.db.read() as cur:
                cur.execute("SELECT DISTINCT key_id FROM kaoping_checkpoints")
                keys = cur.fetchall()
                cur.execute("SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                            "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND "
                            "(l.classid::bigint << 32) + l.objid::bigint = %s", (_LEASE_KEY,))
                holders = cur.fetchall()
            assert len(keys) == 1
            assert holders == [("kaoping-signer",)]  # the worker, not the API processes
        logs = "".join((tmp_path / f"serve{i}.log").read_text() for i in range(2))
        assert "ledger.signer_lease" not in logs  # API processes never compete for it
    finally:
        local.close()


def test_a_second_signer_waits_for_the_lease_and_takes_it_over(pg_settings: Settings) -> None:
    first, second = SignerLease(pg_settings.database_url), SignerLease(pg_settings.database_url)
    try:
        assert first.hold()
        assert not second.hold()  # standing by
        assert first.hold()  # still the holder, round after round
        assert not second.hold()
        first.close()  # the holder's process ends: PostgreSQL releases its session's lock
        assert second.hold()
        assert not first.hold()
    finally:
        first.close()
        second.close()


def test_serve_with_workers_refuses_an_in_process_follower(pg_settings: Settings,
                                                           tmp_path: Path) -> None:
    env = _env(pg_settings, tmp_path) | {"KAOPING_PROJECTIONS": "inprocess"}
    done = subprocess.run([str(KAOPING), "serve", "--workers", "2"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "KAOPING_PROJECTIONS=external" in done.stderr


def test_serve_with_workers_runs_several_api_processes(pg_settings: Settings,
                                                       tmp_path: Path) -> None:
    env = _env(pg_settings, tmp_path)
    url = f"http://{HOST}:{free_port()}"
    local = Services(pg_settings, clock=FixedClock(datetime.now(UTC)))
    try:
        organizer = {**bearer(local, Role.ORGANIZER, IdentityKind.STAFF, "org-1"),
                     "content-type": "application/json"}
        with _process(["serve", "--workers", "2", "--port", url.rsplit(":", 1)[1]],
                      env, tmp_path, "workers", health=url) as (_, proc):
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            wait_until("two API processes", lambda: len(children.read_text().split()) >= 2)
            for n in range(6):
                body = {"code": f"W-{n}", "name": f"乡镇{n}", "kind": "township",
                        "category": "platform-1"}
                status, answer = http("POST", f"{url}/api/v1/units", body, organizer)
                assert status == 201, answer
        with local.db.read() as cur:
            cur.execute("SELECT count(*) FROM kaoping_ledger")
            row = cur.fetchone()
        assert row is not None
        assert row[0] == 6
        assert not (tmp_path / "ledger.key.last-checkpoint").exists()  # no signer in serve
    finally:
        local.close()
