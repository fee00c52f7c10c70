"""kaoping rebuild --check: read models rebuilt from the log equal the live ones, and a row
changed behind the application's back is reported by table and key."""

from __future__ import annotations

from service.demo import DemoCity
from service.rebuild import check, last_check
from service.runtime import Services


def test_rebuilt_read_models_equal_the_live_ones(services: Services) -> None:
    DemoCity(services, units=16, cadres=16, seed=9).run()
    services.follower.catch_up()
    report = check(services)
    assert report.ok, [t for t in report.tables if t.differences]
    tables = {t.table: t for t in report.tables}
    assert tables["rm_results"].live_rows == tables["rm_results"].rebuilt_rows > 0
    assert tables["rm_units"].live_digest == tables["rm_units"].rebuilt_digest
    recorded = last_check(services)
    assert recorded is not None
    assert recorded.report == report
    assert recorded.checkpoint.startswith(services.settings.ledger_origin)


def test_a_row_changed_behind_the_applications_back_is_found(services: Services) -> None:
    DemoCity(services, units=16, cadres=16, seed=9).run()
    services.follower.catch_up()
    with services.db.write() as cur:  # an administrator edits a read model directly
        cur.execute("UPDATE rm_results SET composite = '99.99', final_grade = '好' "
                    "WHERE year = 2025 AND subject = 'team:T02'")
        cur.execute("DELETE FROM rm_units WHERE code = 'T03'")
    report = check(services)
    assert not report.ok
    tables = {t.table: t for t in report.tables}
    assert tables["rm_results"].differences == ["2025|team:T02"]
    assert len(tables["rm_units"].differences) == 1
    assert tables["rm_units"].differences[0].endswith("|T03")
    assert tables["rm_cadres"].differences == []


def test_supervisors_read_the_last_check(services: Services) -> None:
    from typing import Any  # noqa: PLC0415

    from litestar.testing import TestClient  # noqa: PLC0415

    from api import create_app  # noqa: PLC0415
    from service.principals import IdentityKind, Role  # noqa: PLC0415
    from tests.conftest import bearer  # noqa: PLC0415

    with TestClient[Any](app=create_app(services.settings, services=services)) as client:
        url = "/api/v1/operations/rebuild-check"
        supervisor = bearer(services, Role.SUPERVISOR, IdentityKind.STAFF, "sup")
        assert client.get(url, headers=supervisor).json()["rule"] == "rebuild-check.exists"
        check(services)
        body = client.get(url, headers=supervisor).json()
        assert body["report"]["ok"] is True
        assert body["checkpoint"].startswith(services.settings.ledger_origin)
        organizer = bearer(services, Role.ORGANIZER)
        assert client.get(url, headers=organizer).status_code == 403
