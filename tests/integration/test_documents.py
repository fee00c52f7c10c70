"""Documents by hash on both stores (migration 0024): the bytes are append-only for the
application role and the owner alike; bytes changed or removed behind the application's back
(a superuser, triggers off) are refused at download, never served under their hash."""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from service.runtime import Services
from service.settings import Settings
from tests.e2e.test_cycle_scenario import BASE, People, ok, refused, setup_cycle
from tests.integration.test_app_role_tamper import _as
from tests.integration.test_ledger import _q, _superuser

Client = TestClient[Any]
E1 = f"{BASE}/subjects/team:E1"
REFUSED = (psycopg.errors.InsufficientPrivilege, psycopg.errors.RaiseException,
           sqlite3.IntegrityError)


def _uploaded(client: Client, services: Services, who: People, body: bytes) -> str:
    setup_cycle(client, services, who)
    ok(client.post(f"{E1}/documents/work-summary/总结.txt", content=body,
                   headers={**who.org, "Content-Type": "text/plain"}))
    return hashlib.sha256(body).hexdigest()


def test_the_bytes_are_append_only_for_everyone(client: Client, services: Services,
                                                settings: Settings) -> None:
    digest = _uploaded(client, services, People(services), "工作总结".encode())
    for owner in (False, True):
        with _as(settings, owner=owner) as conn:
            for sql, params in (
                    ("UPDATE kaoping_documents SET content = %s WHERE sha256 = %s",
                     (b"x", digest)),
                    ("DELETE FROM kaoping_documents WHERE sha256 = %s", (digest,))):
                with pytest.raises(REFUSED, match="kaoping_documents"):
                    conn.execute(_q(settings, sql), params)


def test_changed_or_missing_bytes_are_refused_not_served(client: Client, services: Services,
                                                         settings: Settings) -> None:
    who = People(services)
    digest = _uploaded(client, services, who, "工作总结".encode())
    url = f"{E1}/documents/{digest}"
    assert client.get(url, headers=who.org).content == "工作总结".encode()
    with _superuser(settings) as conn:
        conn.execute(_q(settings, "UPDATE kaoping_documents SET content = %s WHERE sha256 = %s"),
                     ("工作总結".encode(), digest))
    refused(client.get(url, headers=who.org), 409, "document.integrity")
    with _superuser(settings) as conn:
        conn.execute(_q(settings, "DELETE FROM kaoping_documents WHERE sha256 = %s"), (digest,))
    refused(client.get(url, headers=who.org), 409, "document.stored")
