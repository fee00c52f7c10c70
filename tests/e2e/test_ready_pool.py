"""/ready answers from the connection pool: a probe opens no connection of its own (PostgreSQL,
where a connection costs a process and the server has a limit)."""

from __future__ import annotations

import psycopg
from litestar.testing import TestClient
from psycopg import sql

from api import create_app
from service.runtime import Services
from service.settings import Settings
from tests.conftest import ADMIN_DSN


def test_ready_needs_no_connection_beyond_the_pool(pg_settings: Settings,
                                                   pg_services: Services) -> None:
    role = pg_settings.db_app_role
    with TestClient(app=create_app(pg_settings, services=pg_services)) as client, \
            psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        assert client.get("/ready").json()["ready"] is True  # the pool has what it needs
        row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s",
                            (role,)).fetchone()
        assert row is not None
        held = int(row[0])
        assert held >= 1
        # No connection beyond those the pool holds now can be opened by the application role.
        admin.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(
            sql.Identifier(role), sql.Literal(held)))
        try:
            for _ in range(20):
                resp = client.get("/ready")
                assert resp.status_code == 200, resp.text
                body = resp.json()
                assert (body["ready"], body["store"], body["migrations_pending"]) == (
                    True, "ok", [])
        finally:
            admin.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT -1").format(
                sql.Identifier(role)))
