"""Issue 12: a worker (``kaoping project``) or an API process on PostgreSQL never loads the demo
city into an empty log unless KAOPING_DEMO=true asks for it (its events could never leave)."""

from __future__ import annotations

import threading

from litestar.testing import TestClient

from api import create_app
from projections.follower import head_position
from service.runtime import Services
from service.settings import Settings


def _demo_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "kaoping-demo"]


def test_serving_an_empty_postgres_store_loads_no_demo(pg_settings: Settings) -> None:
    settings = pg_settings.with_overrides(projections="inprocess")
    with TestClient(app=create_app(settings)) as client:
        ready = client.get("/ready").json()
        assert _demo_threads() == []
        assert ready["demo"]["state"] == "idle"
    services = Services(settings)
    try:
        with services.db.read() as cur:
            assert head_position(cur) == -1  # the log is still empty
    finally:
        services.close()
