"""docs/walkthrough.md, run as written: its ```sh walkthrough blocks, in order, in one bash, against
a real ``kaoping serve`` on a fresh SQLite store. Each ``# → NNN`` line is the status the block's
requests must answer (in order), ``jq: EXPR`` a check on the block's output (``jq -e``); a
webhook receiver on loopback must get the deliveries, signed with the subscription's secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.e2e.live_server import HOST, KAOPING, REPO, serve

DOC = REPO / "docs" / "walkthrough.md"
FENCE = re.compile(r"^```sh walkthrough\n(.*?)^```$", re.MULTILINE | re.DOTALL)
EXPECT = re.compile(r"^# → (\d{3})\b(?:.*?jq: (.+)|.*)$", re.MULTILINE)
MARK = "@@walkthrough-block"
BASH, JQ = shutil.which("bash"), shutil.which("jq")  # the reader's tools; the doc says so

# `curl` as the reader runs it, except that each request's status is also written to a file
# (the body still goes to stdout, so `$(curl …)` and `| jq` work as printed).
PRELUDE = r"""
set -euo pipefail
curl() {
  local out code
  out=$(mktemp)
  code=$(command curl -sS -o "$out" -w '%{http_code}' "$@") || { rm -f "$out"; return 1; }
  echo "$code" >> "$WALK_STATUS"
  cat "$out"
  rm -f "$out"
}
"""


@dataclass
class Block:
    script: str
    statuses: list[int]
    checks: list[str]


def blocks() -> list[Block]:
    found = []
    for match in FENCE.finditer(DOC.read_text()):
        script = match.group(1)
        expects = EXPECT.findall(script)
        found.append(Block(script, [int(s) for s, _ in expects], [c for _, c in expects if c]))
    return found


class Receiver(BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], bytes]] = []  # noqa: RUF012 -- one receiver per test

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        type(self).got.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[Receiver]]]:
    handler = type("Hook", (Receiver,), {"got": []})
    server = ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}/hook", handler
    finally:
        server.shutdown()
        server.server_close()


def test_the_doc_has_blocks_to_run() -> None:
    found = blocks()
    assert len(found) >= 10
    for b in found:  # one `# →` per request
        assert len(b.statuses) == b.script.count("curl "), b.script


def test_the_walkthrough_runs_as_written(tmp_path: Path,
                                         receiver: tuple[str, type[Receiver]]) -> None:
    hook, handler = receiver
    assert BASH is not None and JQ is not None, "the walkthrough needs bash and jq"
    found = blocks()
    status_file = tmp_path / "statuses"
    script = PRELUDE + "".join(
        f'echo "{MARK} {i}"; echo "{MARK} {i}" >> "$WALK_STATUS"\n{b.script}\necho\n'
        for i, b in enumerate(found))
    with serve(tmp_path, KAOPING_WEBHOOK_ALLOW_LOOPBACK="true") as srv:
        env = {**srv.env, "API": srv.url, "HOOK": hook, "WALK_STATUS": str(status_file),
               "PATH": f"{KAOPING.parent}:{srv.env.get('PATH', '/usr/bin:/bin')}"}
        done = subprocess.run([BASH, "-c", script], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=300, check=False)
        outputs = _split(done.stdout)
        statuses = _split(status_file.read_text() if status_file.exists() else "")
        for i, block in enumerate(found):
            where = f"walkthrough block {i}:\n{block.script}\n"
            assert i in outputs, f"{where}did not run:\n{done.stderr}\n{srv.log_tail()}"
            got = [int(s) for s in statuses.get(i, "").split()]
            assert got == block.statuses, f"{where}answered {got}:\n{outputs[i]}\n{done.stderr}"
            for check in block.checks:
                jq = subprocess.run([JQ, "-e", check], input=outputs[i], capture_output=True,
                                    text=True, check=False)
                assert jq.returncode == 0, f"{where}jq -e {check!r} failed on:\n{outputs[i]}"
        assert done.returncode == 0, done.stderr

        # The webhook: both phase changes delivered to the receiver, signed with the secret.
        subscription = json.loads(outputs[len(found) - 2])
        deadline = time.monotonic() + 30
        while len(handler.got) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    types = sorted(json.loads(body)["type"] for _, body in handler.got)
    assert types == ["kaoping.cycle.announced.v1", "kaoping.cycle.scoringopened.v1"]
    key = base64.b64decode(subscription["secret"].removeprefix("whsec_"))
    for headers, body in handler.got:
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        assert f"v1,{expected}" in headers["webhook-signature"].split()


def _split(text: str) -> dict[int, str]:
    parts: dict[int, str] = {}
    current: int | None = None
    for line in text.splitlines(keepends=True):
        if line.startswith(MARK):
            current = int(line.split()[1])
            parts[current] = ""
        elif current is not None:
            parts[current] += line
    return parts
