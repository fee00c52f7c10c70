"""Configuration: one typed object from KAOPING_* variables; bad values named in one line."""

from __future__ import annotations

import pytest

from service.settings import Settings, SettingsError, load_settings
from service.store import library_env


def test_defaults_are_the_embedded_sqlite_store() -> None:
    s = load_settings({})
    assert s.database_url == "sqlite:///var/kaoping.db"
    assert s.engine == "sqlite"
    assert str(s.sqlite_path) == "var/kaoping.db"
    assert (s.host, s.port) == ("127.0.0.1", 8000)


def test_values_are_read_and_converted() -> None:
    s = load_settings({"KAOPING_PORT": "9001", "KAOPING_DATABASE_URL": "postgresql://a@h/db",
                       "KAOPING_LOG_LEVEL": "debug"})
    assert s.port == 9001
    assert s.engine == "postgres"
    assert s.log_level == "debug"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"KAOPING_PORT": "eighty"}, "KAOPING_PORT"),
        ({"KAOPING_PORT": "70000"}, "KAOPING_PORT"),
        ({"KAOPING_LOG_LEVEL": "loud"}, "KAOPING_LOG_LEVEL"),
        ({"KAOPING_DATABASE_URL": "mysql://x"}, "KAOPING_DATABASE_URL"),
        ({"KAOPING_DB_APP_ROLE": "Robert'); DROP"}, "KAOPING_DB_APP_ROLE"),
        ({"KAOPING_DATABSE_URL": "sqlite:///x"}, "KAOPING_DATABSE_URL"),
    ],
)
def test_invalid_configuration_names_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    message = str(err.value)
    assert message.startswith(names)
    assert "\n" not in message


@pytest.mark.parametrize(
    "key", ["POSTGRES_ENABLE_DB_FUNCTIONS", "KAOPING_POSTGRES_ENABLE_DB_FUNCTIONS",
            "PERSISTENCE_MODULE", "KAOPING_CREATE_TABLE", "TZINFO_TOPIC"])
def test_library_keys_in_the_environment_refuse_start(key: str) -> None:
    with pytest.raises(SettingsError, match=key):
        load_settings({key: "y"})


def test_library_settings_come_from_ours_only() -> None:
    pg = library_env(Settings(database_url="postgresql://app:pw@db.example:6543/kp"))
    assert pg["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (pg["POSTGRES_HOST"], pg["POSTGRES_PORT"], pg["POSTGRES_DBNAME"]) == (
        "db.example", "6543", "kp")
    assert (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"]) == ("app", "pw")
    assert pg["CREATE_TABLE"] == "n"
    assert "POSTGRES_ENABLE_DB_FUNCTIONS" not in pg
    lite = library_env(Settings(database_url="sqlite:///var/x.db"))
    assert lite["SQLITE_DBNAME"] == "var/x.db"
    assert lite["CREATE_TABLE"] == "n"


PG = "postgresql://a@h/db"


@pytest.mark.parametrize(("env", "loads"), [
    ({}, True),  # `make run`: the embedded store gets the demo city
    ({"KAOPING_DATABASE_URL": PG}, False),  # production: never unless asked
    ({"KAOPING_DATABASE_URL": PG, "KAOPING_DEMO": "true"}, True),
    ({"KAOPING_DEMO": "false"}, False),
    ({"KAOPING_DEMO": "0"}, False),
])
def test_the_demo_city_loads_by_default_only_into_the_embedded_store(
        env: dict[str, str], loads: bool) -> None:
    assert load_settings(env).demo_on_serve is loads


def test_kaoping_demo_must_be_a_boolean() -> None:
    with pytest.raises(SettingsError, match="KAOPING_DEMO"):
        load_settings({"KAOPING_DEMO": "sometimes"})


def test_the_urls_other_parameters_reach_the_event_librarys_pool() -> None:
    """A multi-host URL's ``target_session_attrs=read-write`` (how a failover is followed,
    tests/e2e/test_failover.py) and any other parameter the library's settings cannot name go
    to its pool through our factory; a plain URL keeps the library's own factory."""
    import json  # noqa: PLC0415

    url = ("postgresql://app@10.0.0.1:5432,10.0.0.2:5433/kaoping?"
           "target_session_attrs=read-write&sslmode=require")
    env = library_env(Settings(database_url=url))
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"]) == ("10.0.0.1,10.0.0.2", "5432,5433")
    assert env["PERSISTENCE_MODULE"] == "service.store:KaopingPostgresFactory"
    assert json.loads(env["CONNINFO_EXTRA"]) == {"target_session_attrs": "read-write",
                                                 "sslmode": "require"}
    plain = library_env(Settings(database_url="postgresql://app@10.0.0.1/kaoping"))
    assert plain["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert "CONNINFO_EXTRA" not in plain
