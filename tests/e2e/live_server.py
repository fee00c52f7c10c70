"""A real Kaoping server for end-to-end tests, run as a user runs it (``kaoping migrate``,
``kaoping serve``) on 127.0.0.1 with a throwaway SQLite store, and the small HTTP client the
tests talk to it with (the standard library only, no proxies)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
KAOPING = REPO / ".venv" / "bin" / "kaoping"
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 60.0


@dataclass
class Server:
    url: str
    env: dict[str, str]
    workdir: Path
    log: Path

    @property
    def netloc(self) -> str:
        return urlsplit(self.url).netloc

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAOPING_")}
    env.update(
        {
            "KAOPING_DATABASE_URL": f"sqlite:///{tmp / 'k.db'}",
            "KAOPING_SIGNING_KEY_PATH": str(tmp / "ledger.key"),
            "KAOPING_TOKEN_KEY_PATH": str(tmp / "token.key"),
            "KAOPING_CHECKPOINT_INTERVAL_SECONDS": "0.5",
            "KAOPING_HOST": HOST,
            "KAOPING_DEMO": "false",  # an empty log: this test writes its own events
            # The tests load a city over HTTP as fast as they can: no per-principal limit.
            "KAOPING_RATE_LIMIT_PER_SECOND": "1000000",
        }
    )
    # Put the checkout's own modules first. `.venv/bin/kaoping` otherwise resolves them through
    # the finder that `pip install -e` generated; that finder goes stale when a package gains an
    # __init__.py after installation (until `make` reinstalls), and `kaoping serve` then dies
    # with "cannot import name 'create_app' from 'api' (unknown location)". Same code either way.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def kaoping(server_env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [str(KAOPING), *args],
        env=server_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"kaoping {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def http(
    method: str, url: str, body: object = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    hdrs = {"content-type": "application/json"} if body is not None else {}
    hdrs.update(headers or {})
    request = urllib.request.Request(url, data=data, method=method, headers=hdrs)  # noqa: S310
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            status, raw = err.code, err.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def wait_until(what: str, check: Any, timeout: float = 60) -> None:
    """Poll ``check`` until it is true, failing the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@contextmanager
def process(args: list[str], env: dict[str, str], cwd: Path, log: Path,
            health: str | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """``kaoping *args`` as a child process, its output in ``log``; with ``health`` (a base URL)
    it is yielded once ``/health`` answers 200. Always stopped afterwards (TERM, then KILL)."""
    with log.open("wb") as out:
        proc = subprocess.Popen([str(KAOPING), *args], env=env, cwd=cwd,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while health is not None:
            if proc.poll() is not None:
                pytest.fail(f"kaoping {args[0]} exited with {proc.returncode}:\n"
                            f"{log.read_text(errors='replace')[-3000:]}")
            try:
                if http("GET", f"{health}/health")[0] == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"/health not ready after {STARTUP_TIMEOUT}s:\n"
                            f"{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


@contextmanager
def serve(tmp: Path, **extra_env: str) -> Iterator[Server]:
    """``kaoping migrate`` then ``kaoping serve`` on a free port; always stopped afterwards."""
    env = {**server_env(tmp), **extra_env}
    kaoping(env, tmp, "migrate")
    port = free_port()
    srv = Server(url=f"http://{HOST}:{port}", env=env, workdir=tmp, log=tmp / "serve.log")
    with process(["serve", "--port", str(port)], env, tmp, srv.log, health=srv.url):
        yield srv
