"""Fixtures: every storage-touching test runs on SQLite and on a real PostgreSQL server.

PostgreSQL: one migrated template database and one pair of owner/application roles per test
session (names random, so parallel sessions on one server do not collide); each test gets a
fresh database copied from the template. The DSN comes from KAOPING_TEST_POSTGRES_DSN. An
unreachable server fails the PostgreSQL tests (never skips them); a developer without a server
may deselect them explicitly with KAOPING_TEST_BACKENDS=sqlite, which CI refuses.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from litestar.testing import TestClient
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from api import create_app
from service.clock import FixedClock
from service.migrate import migrate
from service.principals import Identity, IdentityKind, Role
from service.runtime import Services
from service.settings import Settings

ADMIN_DSN = os.environ.get("KAOPING_TEST_POSTGRES_DSN",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _backends() -> list[str]:
    chosen = os.environ.get("KAOPING_TEST_BACKENDS", "sqlite,postgres").split(",")
    if IN_CI and "postgres" not in chosen:
        msg = "CI=true: KAOPING_TEST_BACKENDS may not leave out postgres"
        raise pytest.UsageError(msg)
    return [b.strip() for b in chosen if b.strip()]


BACKENDS = _backends()


@dataclass(frozen=True)
class PgCluster:
    admin_dsn: str
    template: str
    owner_role: str
    app_role: str

    def dsn(self, dbname: str, user: str | None = None) -> str:
        """A postgresql:// URL (the form KAOPING_DATABASE_URL takes) for ``dbname``."""
        params = conninfo_to_dict(self.admin_dsn)
        login = quote(user or str(params.get("user", "postgres")), safe="")
        password = params.get("password") if not user else None
        if password:
            login += ":" + quote(str(password), safe="")
        host, port = params.get("host", "127.0.0.1"), params.get("port", "5432")
        return f"postgresql://{login}@{host}:{port}/{quote(dbname, safe='')}"


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is unreachable at {ADMIN_DSN} ({exc}). Start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, "
            "set KAOPING_TEST_POSTGRES_DSN, or (outside CI) KAOPING_TEST_BACKENDS=sqlite.")


def _settings_for(database_url: str, tmp: Path, **extra: object) -> Settings:
    return Settings(database_url=database_url, signing_key_path=str(tmp / "ledger.key"),
                    token_key_path=str(tmp / "token.key"), projections="external",
                    **extra)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    suffix = secrets.token_hex(4)
    cluster = PgCluster(ADMIN_DSN, f"kp_tpl_{suffix}", f"kp_owner_{suffix}", f"kp_app_{suffix}")
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(cluster.template)))
    settings = _settings_for(
        cluster.dsn(cluster.template, cluster.app_role), tmp_path_factory.mktemp("pg"),
        migrate_database_url=cluster.dsn(cluster.template),
        db_owner_role=cluster.owner_role, db_app_role=cluster.app_role)
    migrate(settings)
    yield cluster
    _drop_cluster(suffix, cluster)


def _drop_cluster(suffix: str, cluster: PgCluster) -> None:
    """Drop the session's databases and roles. Clean-up must not fail the run: on a busy
    server a DROP DATABASE (which waits for a checkpoint) can take minutes, so each statement
    is bounded, and what could not be dropped is named for the operator instead."""
    left: list[str] = []
    deadline = time.monotonic() + 120  # well inside pytest-timeout's 300 s for the last test
    with _admin() as conn:
        conn.execute("SET statement_timeout = '30s'")
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                            (f"kp_%_{suffix}%",)).fetchall()
        for (name,) in rows:
            if time.monotonic() > deadline:
                left.append(str(name))
                continue
            try:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(str(name))))
            except psycopg.Error:
                left.append(str(name))
        for role in (cluster.app_role, cluster.owner_role):
            try:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
            except psycopg.Error:
                left.append(role)
    if left:
        print(f"\nPostgreSQL clean-up left behind (drop by hand): {', '.join(left)}")


def _fresh_pg_settings(cluster: PgCluster, tmp: Path) -> Settings:
    name = f"kp_t_{cluster.template.removeprefix('kp_tpl_')}_{secrets.token_hex(4)}"
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(cluster.template)))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(name), sql.Identifier(cluster.app_role)))
    return _settings_for(cluster.dsn(name, cluster.app_role), tmp,
                         migrate_database_url=cluster.dsn(name),
                         db_owner_role=cluster.owner_role, db_app_role=cluster.app_role)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    if backend == "sqlite":
        s = _settings_for(f"sqlite:///{tmp_path / 'kaoping.db'}", tmp_path)
        migrate(s)
        return s
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return _fresh_pg_settings(cluster, tmp_path)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def services(settings: Settings, clock: FixedClock) -> Iterator[Services]:
    svc = Services(settings, clock=clock)
    yield svc
    svc.close()


@pytest.fixture
def client(settings: Settings, services: Services) -> Iterator[TestClient]:  # type: ignore[type-arg]
    app = create_app(settings, services=services)
    with TestClient(app=app) as c:
        yield c


def bearer(services: Services, role: Role, kind: IdentityKind = IdentityKind.STAFF,
           ident: str = "s1") -> dict[str, str]:
    token = services.tokens.issue(role=role, acts_as=Identity(kind, ident), name=ident,
                                  now=services.clock.now())
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def organizer(services: Services) -> dict[str, str]:
    return bearer(services, Role.ORGANIZER, IdentityKind.STAFF, "org-1")


@pytest.fixture
def pg_settings(pg_cluster: PgCluster, tmp_path: Path) -> Settings:
    """PostgreSQL only: for roles, privileges and concurrency, which SQLite does not have."""
    return _fresh_pg_settings(pg_cluster, tmp_path)


@pytest.fixture
def pg_services(pg_settings: Settings, clock: FixedClock) -> Iterator[Services]:
    svc = Services(pg_settings, clock=clock)
    yield svc
    svc.close()



def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec else None
        if backend is None and "pg_cluster" in getattr(item, "fixturenames", ()):
            backend = "postgres"
        if backend:
            item.user_properties.append(("backend", backend))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Show that the PostgreSQL half of the suite ran (CI reads this, not just the total)."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            backend = dict(getattr(report, "user_properties", [])).get("backend")
            if backend and getattr(report, "when", "call") == "call":
                counts.setdefault(backend, {}).setdefault(outcome, 0)
                counts[backend][outcome] += 1
    for backend, outcomes in sorted(counts.items()):
        summary = ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))
        terminalreporter.write_line(f"backend {backend}: {summary}")
