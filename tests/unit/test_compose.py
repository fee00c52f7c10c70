"""docker-compose.yml: these machines have no Docker engine, so the file is checked by parsing:
the services exist, are wired in order, and every container's configuration is valid Kaoping
configuration (and holds no eventsourcing key that would be refused at start)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from service.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def _expand(value: str) -> str:
    # ${VAR:-default} -> default, as compose does when VAR is unset.
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {k: _expand(str(v)) for k, v in service["environment"].items()}


def test_services_and_their_order() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "migrate", "api", "projector"}
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "projector"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully")
    assert services["migrate"]["command"] == ["kaoping", "migrate"]
    assert services["projector"]["command"] == ["kaoping", "project"]
    assert services["api"]["command"][:2] == ["kaoping", "serve"]


def test_every_kaoping_container_has_valid_settings() -> None:
    services = _compose()["services"]
    loaded: dict[str, Settings] = {}
    for name in ("migrate", "api", "projector"):
        loaded[name] = load_settings(_env(services[name]))  # raises on any bad or library key
    api = loaded["api"]
    assert api.engine == "postgres"
    assert api.projections == "external"
    assert "kaoping_app" in api.database_url
    assert loaded["migrate"].migrate_database_url is not None
    assert "postgres:" in loaded["migrate"].migrate_database_url
    assert loaded["migrate"].db_app_password
    assert loaded["projector"].database_url == api.database_url


def test_the_image_installs_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("domain", "service", "projections", "api", "migrations"):
        assert f"COPY {package} ./{package}" in dockerfile
