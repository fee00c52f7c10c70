"""Published results are served only as the log recorded them, and a cycle published before
results notices existed (``Cycle.Published`` v1) still reads, verifies and can be corrected."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from litestar.testing import TestClient

from api import create_app
from domain.cycle import Cycle
from domain.errors import IntegrityFailure
from domain.publication import (
    PoolDigest,
    ResultsNotice,
    ResultsPool,
    digests_fingerprint,
    pool_digest,
    results_fingerprint_v1,
)
from domain.subject_file import SubjectFile, pool_result
from service.evidence import build_bundle, encode_bundle
from service.published import clear_cache, published_as_of
from service.runtime import Services
from service.settings import Settings
from service.streams import END
from service.verify import VerifyError, verify_bundle
from tests.integration.kit import COMMITTEE, ORG, approve, cadre, sealed_cycle


@contextmanager
def _superuser(settings: Settings) -> Iterator[Any]:
    """A connection past the append-only guards, as a hostile administrator's."""
    if settings.engine == "sqlite":
        conn = sqlite3.connect(settings.sqlite_path, isolation_level=None)
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"
                                    ).fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        try:
            yield conn
        finally:
            conn.close()
    else:
        assert settings.migrate_database_url is not None
        with psycopg.connect(settings.migrate_database_url, autocommit=True) as pg:
            pg.execute("SET session_replication_role = replica")  # triggers off
            yield pg


def _rewrite(settings: Settings, stream_id: UUID, version: int, edit: Any) -> None:
    def q(text: str) -> str:
        return text.replace("%s", "?") if settings.engine == "sqlite" else text

    sid: Any = stream_id.hex if settings.engine == "sqlite" else stream_id
    with _superuser(settings) as conn:
        state = conn.execute(q("SELECT state FROM kaoping_events WHERE originator_id = %s AND "
                               "originator_version = %s"), (sid, version)).fetchone()[0]
        doc = json.loads(bytes(state))
        edit(doc)
        conn.execute(q("UPDATE kaoping_events SET state = %s WHERE originator_id = %s AND "
                       "originator_version = %s"), (json.dumps(doc).encode(), sid, version))


def _publish(services: Services) -> int:
    year = sealed_cycle(services, [95, 93, 80, 78, 60])
    approve(services, year)
    services.evaluation.publish(ORG, year, services.stream_heads, notified_on="2026-03-01")
    return year


def test_a_published_grade_altered_in_the_store_is_never_served(city: Services,
                                                                settings: Settings) -> None:
    year = _publish(city)
    assert city.evaluation.published(year) is not None

    def inflate(doc: dict[str, Any]) -> None:
        for result in doc["pool"]["results"]:
            if result["subject"] == cadre(3):
                result["final_grade"] = "优秀"

    _rewrite(settings, _pool_stream(city, year, cadre(3)), 1, inflate)
    clear_cache()  # a new process: nothing folded yet
    with pytest.raises(IntegrityFailure) as failed:
        city.evaluation.published(year)
    assert failed.value.rule == "results.integrity"
    with TestClient(app=create_app(settings, services=city)) as client:
        resp = client.get(f"/api/v1/cycles/{year}/results")
    assert resp.status_code == 500
    assert (resp.json()["rule"], resp.json()["type"].rsplit("/", 1)[1]) == (
        "results.integrity", "integrity")
    assert "优秀" not in resp.text


def test_a_forgery_consistent_with_every_fingerprint_still_fails_its_leaf(
        city: Services, settings: Settings) -> None:
    """The forger rewrites a grade, the notice's fingerprint and the publication's: the
    fingerprints agree with each other, but not with the ledger's leaves."""
    year = _publish(city)
    forged: dict[str, str] = {}

    def inflate(doc: dict[str, Any]) -> None:
        for result in doc["pool"]["results"]:
            if result["subject"] == cadre(3):
                result["final_grade"] = "优秀"
        forged["digest"] = pool_digest(_pools([doc["pool"]])[0]).digest

    def restate(doc: dict[str, Any]) -> None:
        for d in doc["digests"]:
            d["digest"] = forged["digest"]  # one pool in this city
        forged["fp"] = doc["results_fingerprint"] = digests_fingerprint(
            [PoolDigest(**d) for d in doc["digests"]])

    _rewrite(settings, _pool_stream(city, year, cadre(3)), 1, inflate)
    _rewrite(settings, ResultsNotice.id_for(year), 1, restate)
    published_version = city.evaluation.cycle(year).version
    _rewrite(settings, Cycle.id_for(year), published_version,
             lambda doc: doc.update(results_fingerprint=forged["fp"]))
    clear_cache()
    with pytest.raises(IntegrityFailure, match="not the one its ledger leaf records"):
        city.evaluation.published(year)


def _pool_stream(services: Services, year: int, subject: str) -> UUID:
    entry = services.evaluation.cycle(year).entry(subject)
    return ResultsPool.id_for(year, entry.group, entry.kind.value)


def _pools(pools: list[Any]) -> list[Any]:
    import msgspec  # noqa: PLC0415

    from domain.scoring import PoolResult  # noqa: PLC0415

    return msgspec.json.decode(json.dumps(pools).encode(), type=list[PoolResult])


def _publish_v1(services: Services, year: int) -> list[Any]:
    """Publish the way Kaoping did before results notices: the publication event records
    the fingerprint only, computed with score function 1."""
    ev = services.evaluation
    cycle = ev.cycle(year)
    assert cycle.scheme is not None
    heads = ev.heads(cycle, services.stream_heads)
    versions = {h.stream_id: h.version for h in heads}
    results = [pool_result(cycle.scheme, group, kind, [
        ev.file(year, e.subject, versions[str(SubjectFile.id_for(year, e.subject))])
        for e in cycle.pool(group, kind)], ev.previous_ranks(year)[1], "kaoping-score/1")
        for group, kind in sorted({(e.group, e.kind) for e in cycle.roster})]
    cycle._published(heads=heads, results_fingerprint=results_fingerprint_v1(results),
                     score_version="kaoping-score/1", notified_on="2026-03-01",
                     actor=ORG.id, results_notice=False)
    services.store.save(cycle)
    return results


def test_a_v1_publication_reads_verifies_and_can_be_corrected(city: Services) -> None:
    year = sealed_cycle(city, [95, 93, 80, 78, 60])
    results = _publish_v1(city, year)
    published = city.evaluation.published(year)
    assert published is not None
    assert (published.version, published.recorded, published.score_version) == (
        1, False, "kaoping-score/1")
    assert published.results() == results
    lines = verify_bundle(encode_bundle(build_bundle(city, year, cadre(2))),
                          [city.signer.vkey])
    assert "results version(s) 1, each equal to what it published" in "\n".join(lines)

    # A correction records the v1 results in a notice first, then the correction.
    city.evaluation.record_sanction(ORG, year, cadre(1), code="admonishment",
                                    decided_on="2026-04-01", source="纪委")
    city.evaluation.correct(COMMITTEE, year, city.stream_heads, reason="r", authority="a",
                            reference="m")
    corrected = city.evaluation.published(year)
    assert corrected is not None and (corrected.version, corrected.recorded) == (2, True)
    assert corrected.result_of(cadre(1)).final_grade == "称职"  # type: ignore[union-attr]
    with city.db.read() as cur:
        before = published_as_of(cur, city.store.mapper, year, corrected.position - 2)
    assert before is not None and before.results() == results
    lines = verify_bundle(encode_bundle(build_bundle(city, year, cadre(1))),
                          [city.signer.vkey])
    assert "results version(s) 1, 2" in "\n".join(lines)


def test_a_stored_v1_publication_event_reads_as_without_a_notice(city: Services) -> None:
    year = _publish(city)
    cycle = city.evaluation.cycle(year)
    stored = next(e for e in city.store.recorder.select_events(Cycle.id_for(year))
                  if e.originator_version == cycle.version)
    doc = json.loads(stored.state)
    assert doc.pop("results_notice") is True
    doc.pop("class_version")  # as version 1 stored it
    event = city.store.mapper.to_domain_event(StoredEvent(
        stored.originator_id, stored.originator_version, stored.topic,
        json.dumps(doc).encode()))
    assert isinstance(event, Cycle.Published)
    assert event.results_notice is False


def test_previous_results_are_read_as_published_not_as_the_evidence_now_gives(
        city: Services) -> None:
    """Next year's 位次进退 is measured against last year's version in force, never against
    what last year's evidence would give today (a change after publication, uncorrected)."""
    year = _publish(city)
    ranks = city.evaluation.published(year).ranks()  # type: ignore[union-attr]
    city.evaluation.record_sanction(ORG, year, cadre(1), code="open-case",
                                    decided_on="2026-04-01", source="监委")
    with city.db.read() as cur:
        assert published_as_of(cur, city.store.mapper, year, END).ranks() == ranks  # type: ignore[union-attr]
    assert city.evaluation.previous_ranks(year + 1) == (1, ranks)


def test_a_correction_restates_one_pool_and_its_bundle_shows_no_other(city: Services) -> None:
    """Second format: the correction records digests; the changed pool is restated in its
    stream. A bundle withholding the restatement fails against the digest."""
    year = _publish(city)
    city.evaluation.record_sanction(ORG, year, cadre(1), code="admonishment",
                                    decided_on="2026-04-01", source="纪委")
    city.evaluation.correct(COMMITTEE, year, city.stream_heads, reason="r", authority="a",
                            reference="m")
    corrected = city.evaluation.published(year)
    assert corrected is not None and corrected.version == 2
    assert corrected.result_of(cadre(1)).final_grade == "称职"  # type: ignore[union-attr]
    entry = city.evaluation.cycle(year).entry(cadre(1))
    assert len(corrected.results()) == 2  # the cadres' pool and the teams'
    assert [c.pools for c in corrected.corrections] == [[f"{entry.group}/{entry.kind.value}"]]
    data = json.loads(encode_bundle(build_bundle(city, year, cadre(1))))
    assert [(p["group"], p["kind"]) for p in data["results"]] == [(entry.group,
                                                                   entry.kind.value)]
    assert str(ResultsPool.id_for(year, entry.group, "team")) not in {
        e["stream_id"] for e in data["events"]}
    assert "results version(s) 1, 2" in "\n".join(verify_bundle(json.dumps(data).encode(),
                                                                [city.signer.vkey]))
    sid = str(ResultsPool.id_for(year, entry.group, entry.kind.value))
    stated = [e for e in data["events"] if e["stream_id"] == sid]
    assert [e["topic"] for e in stated] == [ResultsPool.Stated.TOPIC, ResultsPool.Restated.TOPIC]
    data["events"].remove(stated[-1])  # withhold the restatement
    with pytest.raises(VerifyError, match="do not match the digest its notice records"):
        verify_bundle(json.dumps(data).encode(), [city.signer.vkey])


def test_an_approval_recorded_before_the_upgrade_still_publishes_the_same_results(
        city: Services) -> None:
    """审定 recorded by a Kaoping that fingerprinted in the first format binds those results'
    first-format fingerprint: the same results publish (in the second format); others do not."""
    year = sealed_cycle(city, [95, 93, 80, 78, 60])
    ev = city.evaluation
    cycle = ev.cycle(year)
    heads = ev.heads(cycle, city.stream_heads)
    results = ev._pools_at(cycle, heads, ev.previous_ranks(year)[1])
    cycle._approved(results_fingerprint="0" * 64, minutes_ref="m", authority="a",
                    actor=COMMITTEE.id)
    city.store.save(cycle)
    with pytest.raises(Exception, match="approved again") as refused:
        ev.publish(ORG, year, city.stream_heads, notified_on="2026-03-01")
    assert getattr(refused.value, "rule", None) == "publication.approved-unchanged"
    cycle = ev.cycle(year)
    cycle._approved(results_fingerprint=results_fingerprint_v1(results),
                    minutes_ref="m", authority="a", actor=COMMITTEE.id)
    city.store.save(cycle)
    ev.publish(ORG, year, city.stream_heads, notified_on="2026-03-01")
    published = ev.published(year)
    assert published is not None and published.results() == results
    assert published.fingerprint != results_fingerprint_v1(results)  # the second format's
