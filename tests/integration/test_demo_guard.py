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


def test_an_interrupted_demo_load_says_so_and_is_not_ready(services: Services,
                                                           settings: Settings) -> None:
    """A review killed the server mid-load: the next start said "present" and ready, with
    cycle 2025 missing for ever. Now /ready names the interrupted load, and a whole demo (or
    data that is not the demo's) still reads as present."""
    from service.demo import DemoCity  # noqa: PLC0415
    from tests.integration.kit import ORG  # noqa: PLC0415

    demo = DemoCity(services, units=18, cadres=36)
    services.reference.import_rows(ORG, units=demo._units(), cadres=[])  # the first step only
    services.start(demo=True)
    assert _demo_threads() == []  # nothing is loaded over it
    with TestClient(app=create_app(settings, services=services)) as client:
        ready = client.get("/ready")
    body = ready.json()
    assert ready.status_code == 503 and body["ready"] is False
    assert body["demo"]["state"] == "incomplete"
    assert any(p.startswith("demo: a demo load was interrupted") for p in body["problems"])


def test_a_store_of_other_data_is_present_not_incomplete(services: Services) -> None:
    from tests.integration.kit import ORG  # noqa: PLC0415

    services.reference.import_rows(ORG, units=[{"code": "T01", "name": "别的镇",
                                                "kind": "township",
                                                "category": "platform-1"}], cadres=[])
    assert services._demo_found()[0] == "present"
