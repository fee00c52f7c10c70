"""Subject names for the ballot page and the credential sheets (service/session_files.py), on
both stores: from the year's roster, read again while it can change and once when it cannot."""

from __future__ import annotations

from service.runtime import Services
from service.session_files import RosterNames
from tests.integration.kit import register_city, scoring_cycle


class Tick:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_frozen_roster_names_teams_and_cadres_and_is_read_once(services: Services) -> None:
    year = scoring_cycle(register_city(services), [90, 85, 80, 75, 70])
    tick = Tick()
    names = RosterNames(services.evaluation, refresh=30.0, monotonic=tick)
    assert names.cached(year) is None
    loaded = names.load(year)
    team, cadre = loaded.of("team:E1"), loaded.of("cadre:P1")
    assert (team.name, team.unit, team.kind) == ("局1", "局1", "team")
    assert (cadre.name, cadre.unit, cadre.kind) == ("干部1", "局1", "principal")
    assert loaded.units(["cadre:P2", "team:E1", "cadre:P1", "team:E2"]) == ["局2", "局1"]
    tick.now += 10_000  # the cycle is past set-up: its roster cannot change any more
    assert names.cached(year) == loaded


def test_a_year_without_a_cycle_shows_codes_and_is_read_again(services: Services) -> None:
    tick = Tick()
    names = RosterNames(services.evaluation, refresh=30.0, monotonic=tick)
    loaded = names.load(2099)
    assert loaded.names == {}
    assert loaded.of("team:X").name == "team:X"
    assert loaded.of("team:X").unit is None
    assert loaded.units(["team:X"]) == []
    tick.now += 29.9
    assert names.cached(2099) == loaded
    tick.now += 0.1
    assert names.cached(2099) is None  # a cycle may have been opened since: read it again


def test_the_digest_changes_with_the_names(services: Services) -> None:
    names = RosterNames(services.evaluation)
    empty = names.load(2099)
    year = scoring_cycle(register_city(services), [90, 85, 80, 75, 70])
    assert names.load(year).digest != empty.digest
    assert names.load(year).digest == names.load(year).digest
