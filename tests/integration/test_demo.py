"""The demo city: built through the use cases, run to publication twice, reproducible."""

from __future__ import annotations

from litestar.testing import TestClient

from domain.cycle import Cycle, Phase
from service.demo import DemoCity
from service.runtime import Services


def _published(services: Services, year: int) -> Cycle.Published:
    events = [e for e in services.store.events.get(Cycle.id_for(year))
              if isinstance(e, Cycle.Published)]
    assert len(events) == 1
    return events[0]


def test_a_small_demo_city_runs_two_cycles_to_publication(services: Services) -> None:
    city = DemoCity(services, units=22, cadres=66, seed=7)
    city.run()
    assert city.progress.state == "done"
    assert city.progress.done == city.progress.total
    for year in (2024, 2025):
        assert services.evaluation.cycle(year).phase == Phase.PUBLISHED
    cycle = services.evaluation.cycle(2025)
    pools = services.evaluation.pools(cycle, previous=services.evaluation.previous_ranks(2025)[1])
    results = [r for pool in pools for r in pool.results]
    assert len(results) == len(cycle.roster) == 22 + 66
    assert any(r.rank_change not in (None, 0) for r in results)  # 位次进退 against 2024
    assert {r.final_grade for r in results} - {None} <= {"好", "较好", "一般", "较差", "优秀",
                                                         "称职", "基本称职", "不称职"}
    published = _published(services, 2025)
    assert published.score_version == "kaoping-score/4"
    assert published.results_notice  # the results themselves are in the results notice
    assert len(published.heads) == len(cycle.roster)


def test_the_same_seed_gives_the_same_results(services: Services, tmp_path: object) -> None:
    DemoCity(services, units=18, cadres=36, seed=11).run()
    first = _published(services, 2025).results_fingerprint
    from service.migrate import migrate  # noqa: PLC0415
    from service.settings import Settings  # noqa: PLC0415

    other = Settings(database_url=f"sqlite:///{tmp_path}/again.db",
                     token_key_path=f"{tmp_path}/t.key", signing_key_path=f"{tmp_path}/l.key")
    migrate(other)
    again = Services(other)
    try:
        DemoCity(again, units=18, cadres=36, seed=11).run()
        assert _published(again, 2025).results_fingerprint == first
    finally:
        again.close()


def test_the_results_read_model_equals_the_score_function(services: Services) -> None:
    from projections.results import read_results  # noqa: PLC0415

    DemoCity(services, units=20, cadres=40, seed=3).run()
    services.follower.catch_up()
    for year in (2024, 2025):
        cycle = services.evaluation.cycle(year)
        live = [r for pool in services.evaluation.pools(
            cycle, previous=services.evaluation.previous_ranks(year)[1]) for r in pool.results]
        with services.db.read() as cur:
            projected = [r for _, _, _, r in read_results(cur, year, group=None, kind=None,
                                                          after=None, limit=10_000)]
        assert sorted(projected, key=lambda r: r.subject) == sorted(live,
                                                                    key=lambda r: r.subject)


def test_a_backlog_recomputes_each_pool_once_at_the_end(services: Services) -> None:
    from projections.follower import Follower  # noqa: PLC0415
    from projections.results import ResultsView, dirty_pools  # noqa: PLC0415

    DemoCity(services, units=16, cadres=16, seed=4).run()
    view = ResultsView(services.store.mapper)
    follower = Follower(services.db, services.store.mapper, [view], page_size=50)
    follower.reset(view)  # the demo loader caught it up along the way: start from zero
    dirty: set[tuple[str, str]] = set()
    while not dirty:  # full pages only: pools are marked, not yet computed
        assert follower.step(view) == 50
        with services.db.read() as cur:
            dirty = dirty_pools(cur, 2024)
    with services.db.read() as cur:
        cur.execute("SELECT count(*) FROM rm_results")
        assert cur.fetchone() == (0,)
    follower.catch_up()  # the last, partial page settles every dirty pool once
    with services.db.read() as cur:
        assert dirty_pools(cur, 2024) == dirty_pools(cur, 2025) == set()
        cur.execute("SELECT count(*) FROM rm_results WHERE year = 2025")
        row = cur.fetchone()
    assert row is not None
    assert row[0] == len(services.evaluation.cycle(2025).roster)


def _spearman(a: list[float], b: list[float]) -> float:
    def ranks(xs: list[float]) -> list[float]:
        order = sorted(range(len(xs)), key=lambda i: xs[i])
        out = [0.0] * len(xs)
        for rank, i in enumerate(order):
            out[i] = float(rank)
        return out

    ra, rb = ranks(a), ranks(b)
    n = len(a)
    mean = (n - 1) / 2
    cov = sum((x - mean) * (y - mean) for x, y in zip(ra, rb, strict=True))
    var = sum((x - mean) ** 2 for x in ra)
    return cov / var


def test_units_keep_their_strength_across_years_and_results_are_used(
        services: Services) -> None:
    """Issue 13: year-on-year rank correlation of the teams ≥ 0.5 (a strong bureau stays
    strong), and the last year's results are used (考核结果运用), each use on its grade."""
    DemoCity(services, units=40, cadres=40, seed=5).run()
    composites = {}
    for year in (2024, 2025):
        published = services.evaluation.published(year)
        assert published is not None
        composites[year] = {r.subject: float(r.composite) for p in published.results()
                            if p.kind.value == "team" for r in p.results}
    teams = sorted(composites[2024])
    rho = _spearman([composites[2024][t] for t in teams], [composites[2025][t] for t in teams])
    assert rho >= 0.5, rho
    published = services.evaluation.published(2025)
    assert published is not None
    uses = {s: services.uses.of(DemoCity(services).org, 2025, s)
            for p in published.results() for s in (r.subject for r in p.results)}
    recorded = [(s, u) for s, found in uses.items() for u in found]
    assert {u.kind for _, u in recorded} >= {"feedback"}
    for subject, use in recorded:
        result = published.result_of(subject)
        assert result is not None and use.grade == result.final_grade
        assert use.results_version == published.version


def test_the_demo_city_is_plausible(services: Services, client: TestClient) -> None:  # type: ignore[type-arg]
    """Issue 13: real names, no duplicates; two 正职 per township; every pool's grades within
    its quota and a quota that binds somewhere; unit strength persists; the team and cadre
    ballots are real sessions; the committee decided, the 公示 brought cases, results used."""
    from domain.ballots import SessionState  # noqa: PLC0415
    from projections.cadres import list_cadres  # noqa: PLC0415
    from projections.units import list_units  # noqa: PLC0415
    from service.demo import DEPARTMENTS, TOWNSHIPS, plausibility  # noqa: PLC0415

    city = DemoCity(services, units=36, cadres=260, seed=13)
    city.run()
    services.follower.catch_up()
    with services.db.read() as cur:
        units = list_units(cur, after_code=None, limit=10_000)
        cadres = list_cadres(cur, after_code=None, limit=10_000)
    names = [u.name for u in units]
    assert len(names) == len(set(names)) == 36
    known = {n for n, _ in TOWNSHIPS} | {n for v in DEPARTMENTS.values() for n in v}
    assert set(names) <= known
    assert not [n for n in names if n[-1].isdigit()]  # no "税务局16"
    # 18 city leaders in posts (四大班子), in charge of units; a post that heads a unit names it
    # (回避), and a leader's score records the post the scheme weighs it by.
    l01, l08 = services.reference.leader("L01"), services.reference.leader("L08")
    assert [(p.body.value, p.title) for p in l01.posts] == [("party-committee", "书记")]
    assert len(l01.charges) == len(units)
    by_name = {u.name: u.code for u in units}
    assert any(p.unit_code == by_name["市委组织部"] for p in l08.posts)
    assert by_name["市委组织部"] not in {c.unit_code for c in l08.charges}
    for unit in (u for u in units if u.kind == "township"):
        heads = [c for c in cadres if c.unit_code == unit.code and c.role == "principal"]
        assert len(heads) == 2, unit.name
    composites = {}
    for year in (2024, 2025):
        published = services.evaluation.published(year)
        assert published is not None
        shape = plausibility(published.results())
        for pool, figures in shape.items():
            assert isinstance(figures, dict)
            for grade, limit in figures["limits"].items():
                assert figures["grades"].get(grade, 0) <= limit, (year, pool, figures)
        assert any(isinstance(f, dict) and f["bound"] for f in shape.values()), shape
        assert any(r.decided_by_committee for p in published.results() for r in p.results)
        composites[year] = {r.subject: float(r.composite) for p in published.results()
                            if p.kind.value == "team" for r in p.results}
        for unit in units:  # 民主测评: one team session and one cadre session per unit
            for prefix in ("bz", "gb"):
                session = services.sessions.session(f"{prefix}-{year}-{unit.code.lower()}")
                assert session.state == SessionState.CLOSED
    teams = sorted(composites[2024])
    rho = _spearman([composites[2024][t] for t in teams], [composites[2025][t] for t in teams])
    assert rho >= 0.5, rho
    cases = services.cases.listing(city.supervisor, after=None, limit=100)
    # three 公示 objections a year and a challenge of a 2025 commitment, each checked, closed
    assert len(cases) == 7
    assert all(c["state"] == "closed" for c in cases)
    _the_latest_cycle_uses_the_method(services, city)
    # The notice of a demo cycle is read after its window: closed, and final.
    notice = client.get("/api/v1/cycles/2025/notice")
    assert notice.status_code == 200, notice.text
    body = notice.json()
    assert (body["state"], body["objections"], body["undecided"], body["final"]) == (
        "closed", 3, 0, True)
    assert body["listed"] > 0 and body["items"] == []  # the window is over: no names
    last = services.evaluation.published(2025)
    assert last is not None
    kinds = {u.kind for p in last.results() for r in p.results
             for u in services.uses.of(city.org, 2025, r.subject)}
    assert {"feedback", "reward"} <= kinds


def _the_latest_cycle_uses_the_method(services: Services, city: DemoCity) -> None:
    """Issue 13: in 2025 every unit published its commitments (责任到人, 共绩 attributed
    once), one was challenged anonymously (a case); every subject's documents were read by a
    reviewing leader and cited by the team's findings; at least three members scored every
    dimension, and the 组长 wrote a 评语 of the subject's own; the 公示 objections were lodged
    in the window and decided, so both notices are final; every subject was notified and
    fed back."""
    from projections.cases import access_log  # noqa: PLC0415

    ev = services.evaluation
    cycle = ev.cycle(2025)
    scheme = cycle.scheme
    assert scheme is not None
    assert scheme.commitments.derivation == "attributed-completion"
    teams = [e for e in cycle.roster if e.kind.value == "team"]
    shared = 0
    for team in teams:
        found = services.commitments.of(2025, team.unit_code)
        assert found is not None, team.unit_code
        assert found.published_on <= "2025-03-31"
        unit_cadres = {e.code for e in cycle.roster if e.unit_code == team.unit_code} - {
            team.code}
        for target in found.targets.values():
            assert set(target.responsible) <= unit_cadres and target.responsible
            assert found.achieved.get(target.code) is not None
            if target.partners:
                shared += 1
                assert target.lead is not None or sum(target.shares.values()) == 1
        assert any(code in found.satisfaction for code in found.targets)  # 群众认可
    assert shared >= 1
    challenged = [c for t in teams
                  if (c := services.commitments.of(2025, t.unit_code)) and c.challenges]
    assert challenged
    remarks = []
    with services.db.read() as cur:
        reads = {r["subject"] for r in access_log(cur, subject=None, after=-1, limit=10**6,
                                                  what="document") if r["allowed"]}
    for entry in cycle.roster:
        file = ev.file(2025, entry.subject)
        assert len(file.team) >= 3 and file.team_leader in file.team
        dimensions = [d.code for d in scheme.team_review.dimensions_for(entry.kind)]
        assert {(m, d) for m in file.team for d in dimensions} <= set(file.member_scores)
        assert file.remark
        remarks.append(file.remark)
        kinds = {"work-summary"} if entry.kind.value == "team" else {"duty-report",
                                                                      "self-evaluation"}
        assert set(file.documents) == kinds
        assert entry.subject in reads
    assert len(set(remarks)) > len(remarks) // 2  # drawn from each result, not one sentence
    for year in (2024, 2025):
        lodged, undecided = ev.objection_counts(ev.cycle(year))
        assert (lodged, undecided) == (3, 0)
        assert all(s.final for s in ev.notice_status(city.org, year))
    assert services.notifications.due(city.org, 2025) == []
