"""Five consecutive published cycles: every year's rank change (位次进退) is measured against
the previous year's published results, and every year's evidence bundle verifies offline --
the third year and after included (each bundle proves the version of last year's results it
was measured against, without recomputing the years before)."""

from __future__ import annotations

from domain.cycle import Phase
from service.demo import DemoCity
from service.evidence import build_bundle, encode_bundle
from service.runtime import Services
from service.verify import verify_bundle

YEARS = (2021, 2022, 2023, 2024, 2025)


def test_five_consecutive_cycles_each_bundle_verifies_offline(services: Services) -> None:
    DemoCity(services, units=16, cadres=16, seed=4, years=YEARS).run()
    previous: dict[str, int] = {}
    for year in YEARS:
        assert services.evaluation.cycle(year).phase == Phase.PUBLISHED
        published = services.evaluation.published(year)
        assert published is not None and published.version == 1
        results = {r.subject: r for p in published.results() for r in p.results}
        # 位次进退 is last year's published rank minus this year's.
        for subject, r in results.items():
            assert r.previous_rank == previous.get(subject)
            if r.previous_rank is not None:
                assert r.rank_change == r.previous_rank - r.rank
        if year > YEARS[0]:
            assert any(r.rank_change for r in results.values())
        previous = published.ranks()
        for subject in ("team:T02", "cadre:C00002"):
            bundle = build_bundle(services, year, subject)
            lines = verify_bundle(encode_bundle(bundle), [services.signer.vkey])
            assert lines[-1].startswith(f"{subject}: composite "), lines
            assert lines[-1].endswith("(results version 1)")
