"""The `kaoping` command line, run as a real process against a real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from api import create_app
from service.runtime import Services
from service.settings import Settings

UNIT = {"code": "CLI-1", "name": "Dept", "kind": "department", "category": "vertical"}


def _kaoping(settings: Settings, *args: str, extra: dict[str, str] | None = None,
             ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAOPING_")}
    env |= {"KAOPING_DATABASE_URL": settings.database_url,
            "KAOPING_TOKEN_KEY_PATH": settings.token_key_path,
            "KAOPING_DB_APP_ROLE": settings.db_app_role,
            "KAOPING_DB_OWNER_ROLE": settings.db_owner_role, **(extra or {})}
    if settings.migrate_database_url:
        env["KAOPING_MIGRATE_DATABASE_URL"] = settings.migrate_database_url
    return subprocess.run([sys.executable, "-m", "service.cli", *args], env=env, text=True,
                          capture_output=True, timeout=120, check=False)


def test_an_api_key_is_printed_once_and_works(settings: Settings, services: Services) -> None:
    out = _kaoping(settings, "keys", "create", "--role", "organizer", "--name", "HR system",
                   "--as", "staff:hr")
    assert out.returncode == 0, out.stderr
    key = out.stdout.strip()
    assert key.startswith("kp_")
    assert "shown once" in out.stderr
    with services.db.read() as cur:
        cur.execute("SELECT name, role, acts_as, key_hash FROM kaoping_api_keys")
        [(name, role, acts_as, digest)] = cur.fetchall()
    assert (name, role, acts_as) == ("HR system", "organizer", "staff:hr")
    assert key.encode() not in bytes(digest)
    app = create_app(settings, services=services)
    with TestClient[Any](app=app) as client:
        resp = client.post("/api/v1/units", json=UNIT, headers={"X-API-Key": key})
        assert resp.status_code == 201, resp.text
        assert client.post("/api/v1/units", json=UNIT,
                           headers={"X-API-Key": key[:-1] + "x"}).status_code == 401


def test_a_bearer_token_names_the_person(settings: Settings, services: Services) -> None:
    out = _kaoping(settings, "tokens", "issue", "--role", "organizer", "--as", "staff:li-wei")
    assert out.returncode == 0, out.stderr
    # The CLI issues with the system clock: a token from the future of the tests' fixed clock.
    principal = services.tokens.verify(out.stdout.strip(), now=datetime.now(UTC))
    assert principal.id == "person:staff:li-wei"
    assert principal.role.value == "organizer"


def test_bad_input_gets_one_clear_line(settings: Settings) -> None:
    out = _kaoping(settings, "tokens", "issue", "--role", "organizer", "--as", "nobody")
    assert out.returncode == 2
    assert "KIND:ID" in out.stderr
    out = _kaoping(settings, "migrate", extra={"KAOPING_PORT": "x"})
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "kaoping: configuration error: KAOPING_PORT='x' is invalid: Expected `int`, got `str`"]


def test_migrate_reports_a_current_schema(settings: Settings, tmp_path: Path) -> None:
    out = _kaoping(settings, "migrate")
    assert out.returncode == 0, out.stderr
    assert "the schema is current" in out.stdout


def test_csv_import_is_all_or_nothing(settings: Settings, services: Services,
                                      tmp_path: Path) -> None:
    units = tmp_path / "units.csv"
    units.write_text("code,name,kind,category\nT01,城关镇,township,platform-1\n"
                     "E01,发改局,department,economic-management\n", encoding="utf-8")
    cadres = tmp_path / "cadres.csv"
    cadres.write_text("code,name,unit_code,role,since\nC1,张三,T01,principal,2020-01-01\n"
                      "C2,李四,X99,deputy,2021-01-01\nC3,王五,E01,boss,2021-01-01\n",
                      encoding="utf-8")
    bad = _kaoping(settings, "import", "--units", str(units), "--cadres", str(cadres))
    assert bad.returncode == 1
    lines = bad.stderr.strip().splitlines()
    assert lines[0].startswith("cadres[2].unit_code:")
    assert "[cadre.unit-exists]" in lines[0]
    assert lines[1].startswith("cadres[3]:")
    with services.db.read() as cur:
        cur.execute("SELECT count(*) FROM kaoping_ledger")
        assert cur.fetchone() == (0,)
    cadres.write_text("code,name,unit_code,role,since\nC1,张三,T01,principal,2020-01-01\n",
                      encoding="utf-8")
    good = _kaoping(settings, "import", "--units", str(units), "--cadres", str(cadres))
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("imported 3 records")


def test_a_rotated_key_is_the_same_principal_and_a_revoked_key_is_refused(
        settings: Settings, services: Services) -> None:
    old = _kaoping(settings, "keys", "create", "--role", "organizer", "--name", "HR system")
    assert old.returncode == 0, old.stderr
    old_key = old.stdout.strip()
    old_id = old_key.split("_")[1]
    rotated = _kaoping(settings, "keys", "rotate", old_id)
    assert rotated.returncode == 0, rotated.stderr
    new_key = rotated.stdout.strip()
    assert new_key != old_key
    assert f"kaoping keys revoke {old_id}" in rotated.stderr
    listed = [json.loads(line) for line in
              _kaoping(settings, "keys", "list").stdout.splitlines()]
    assert {k["principal"] for k in listed} == {f"key:{old_id}"}
    assert len(listed) == 2
    assert all(k["revoked_at"] is None for k in listed)
    app = create_app(settings, services=services)
    with TestClient[Any](app=app) as client:
        # Both keys work during the switch, as one principal: an Idempotency-Key carries over.
        headers = {"Idempotency-Key": "sync-1"}
        first = client.post("/api/v1/units", json=UNIT, headers={**headers, "X-API-Key": old_key})
        assert first.status_code == 201, first.text
        again = client.post("/api/v1/units", json=UNIT, headers={**headers, "X-API-Key": new_key})
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        revoked = _kaoping(settings, "keys", "revoke", old_id)
        assert revoked.returncode == 0, revoked.stderr
        refused = client.get("/api/v1/events", headers={"X-API-Key": old_key})
        assert refused.status_code == 401
        assert refused.json()["detail"] == "API key revoked"
        assert client.get("/api/v1/events", headers={"X-API-Key": new_key}).status_code == 200
    twice = _kaoping(settings, "keys", "revoke", old_id)
    assert twice.returncode != 0
    assert f"no active API key {old_id}" in twice.stderr


def test_from_the_wrong_directory_nothing_is_created(tmp_path: Path) -> None:
    """Run where there is no store: a clear refusal, not a new empty store and signing key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAOPING_")}
    for args in (("explain", "team:T02", "--cycle", "2025"), ("keys", "ledger-public"),
                 ("verify-log",)):
        out = subprocess.run([sys.executable, "-m", "service.cli", *args], env=env, text=True,
                             capture_output=True, timeout=120, check=False, cwd=tmp_path)
        assert out.returncode == 2, (args, out.stderr)
        assert "no store at" in out.stderr
        assert "run kaoping from the project directory" in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_output_into_a_closed_pipe_ends_quietly(settings: Settings, services: Services) -> None:
    """`kaoping keys list | head -1`: the reader is gone before the command writes."""
    for n in range(3):
        assert _kaoping(settings, "keys", "create", "--role", "organizer",
                        "--name", f"system {n}").returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAOPING_")}
    env |= {"KAOPING_DATABASE_URL": settings.database_url,
            "KAOPING_TOKEN_KEY_PATH": settings.token_key_path}
    reader, writer = os.pipe()
    os.close(reader)  # like `head` once it has read its lines
    try:
        done = subprocess.run([sys.executable, "-m", "service.cli", "keys", "list"], env=env,
                              stdout=writer, stderr=subprocess.PIPE, text=True, timeout=120,
                              check=False)
    finally:
        os.close(writer)
    assert "Traceback" not in done.stderr
    assert "BrokenPipe" not in done.stderr
    assert done.returncode == 1
