"""What the application role can still write cannot change what is served or who holds power:
a published grade edited in the results read model is not served (the published version is
read from the log and checked against its fingerprint); an API key's role, identity or hash
cannot be changed and a revocation cannot be undone, by the application role (column grants)
nor by anyone (triggers); neither can a webhook subscription's owner, role, url or secret."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import psycopg
import pytest
from litestar.testing import TestClient

from api import create_app
from service.principals import IdentityKind, Role, create_api_key, list_api_keys, revoke_api_key
from service.runtime import Services
from service.settings import Settings
from tests.conftest import bearer
from tests.integration.kit import cadre, register_city
from tests.integration.test_published_integrity import _publish

REFUSED = (psycopg.errors.InsufficientPrivilege, sqlite3.IntegrityError)


@contextmanager
def _as(settings: Settings, *, owner: bool = False) -> Iterator[Any]:
    """A raw connection as the application role (or the owner), committing each statement."""
    if settings.engine == "sqlite":
        conn = sqlite3.connect(settings.sqlite_path, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()
        return
    url = settings.migrate_database_url if owner else settings.database_url
    assert url is not None
    with psycopg.connect(url, autocommit=True) as pg:
        yield pg


def _q(settings: Settings, text: str) -> str:
    return text.replace("%s", "?") if settings.engine == "sqlite" else text


def test_a_published_grade_edited_in_the_read_model_is_not_served(
        pg_services: Services, pg_settings: Settings) -> None:
    city, settings = pg_services, pg_settings
    year = _publish(register_city(city))
    city.follower.catch_up()
    subject = cadre(3)
    sup = bearer(city, Role.SUPERVISOR, IdentityKind.STAFF, "sup")  # cadres' cards: not public
    with TestClient(app=create_app(settings, services=city)) as client:
        before = client.get(f"/api/v1/cycles/{year}/subjects/{subject}/result",
                            headers=sup).json()
        assert before["results_version"] == 1
        assert before["final_grade"] != "优秀"
        with _as(settings) as app:  # the application role edits the read model: allowed
            row = app.execute("SELECT result FROM rm_results WHERE year = %s AND subject = %s",
                              (year, subject)).fetchone()
            doc = msgspec.json.decode(bytes(row[0]))
            doc["final_grade"], doc["composite"] = "优秀", "99.99"
            changed = app.execute(
                "UPDATE rm_results SET final_grade = %s, composite = %s, result = %s "
                "WHERE year = %s AND subject = %s RETURNING 1",
                ("优秀", "99.99", msgspec.json.encode(doc), year, subject)).fetchall()
            assert changed == [(1,)]
        one = client.get(f"/api/v1/cycles/{year}/subjects/{subject}/result", headers=sup)
        page = client.get(f"/api/v1/cycles/{year}/results", headers=sup)
    assert one.status_code == 200
    assert (one.json()["final_grade"], one.json()["composite"]) == (
        before["final_grade"], before["composite"])
    listed = next(i["result"] for i in page.json()["items"]
                  if i["result"]["subject"] == subject)
    assert (listed["final_grade"], listed["composite"]) == (
        before["final_grade"], before["composite"])
    assert "99.99" not in page.text


def test_the_app_role_cannot_change_a_key_role_or_undo_a_revocation(
        pg_services: Services, pg_settings: Settings) -> None:
    services, settings = pg_services, pg_settings
    key_id, _ = create_api_key(services.db, role=Role.ORGANIZER, name="HR sync",
                               acts_as=None, now=services.clock.now())
    with _as(settings) as app:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="kaoping_api_keys"):
            app.execute("UPDATE kaoping_api_keys SET role = 'supervisor' WHERE key_id = %s",
                        (key_id,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("UPDATE kaoping_api_keys SET acts_as = 'staff:boss' WHERE key_id = %s",
                        (key_id,))
    revoke_api_key(services.db, key_id, services.clock.now())  # the grant the service needs
    with _as(settings) as app, pytest.raises(psycopg.errors.InsufficientPrivilege,
                                             match="revocation is final"):
        app.execute("UPDATE kaoping_api_keys SET revoked_at = NULL WHERE key_id = %s",
                    (key_id,))
    (info,) = [k for k in list_api_keys(services.db) if k.key_id == key_id]
    assert info.revoked_at is not None
    assert info.role != "supervisor"


def test_power_columns_are_fixed_for_everyone(services: Services, settings: Settings) -> None:
    """The triggers hold for the owner too (and on SQLite, which has no roles)."""
    key_id, _ = create_api_key(services.db, role=Role.ORGANIZER, name="HR sync", acts_as=None,
                               now=services.clock.now())
    with _as(settings, owner=True) as conn:
        with pytest.raises(REFUSED, match="kaoping_api_keys"):
            conn.execute(_q(settings, "UPDATE kaoping_api_keys SET role = %s WHERE key_id = %s"),
                         ("supervisor", key_id))
        with pytest.raises(REFUSED):
            conn.execute(_q(settings, "DELETE FROM kaoping_api_keys WHERE key_id = %s"),
                         (key_id,))
        conn.execute(_q(settings, "INSERT INTO kaoping_webhook_subscriptions (id, owner, role, "
                                  "url, event_types, secret, after_position, active, "
                                  "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"),
                     ("wh_1", "key:x", "reader", "https://example.org/h", "[]", "whsec_x", 0,
                      True, "2026-03-01T09:00:00+00:00"))
        for column, value in (("owner", "key:boss"), ("role", "supervisor"),
                              ("url", "https://evil.example/h"), ("secret", "whsec_y")):
            with pytest.raises(REFUSED, match="kaoping_webhook_subscriptions"):
                conn.execute(_q(settings, f"UPDATE kaoping_webhook_subscriptions SET {column} "
                                          "= %s WHERE id = %s"), (value, "wh_1"))
        conn.execute(_q(settings, "UPDATE kaoping_webhook_subscriptions SET paused = %s "
                                  "WHERE id = %s"), (True, "wh_1"))
    (info,) = [k for k in list_api_keys(services.db) if k.key_id == key_id]
    assert info.role == Role.ORGANIZER.value
