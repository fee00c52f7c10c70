"""The msgspec Mapper: events come back with their types; bad payloads fail loudly."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent
from hypothesis import given
from hypothesis import strategies as st

from service.mapper import MsgspecMapper, NoTranscoder, decode_fields


class Sample(Aggregate):
    TOPIC = "kaoping-test/Sample"

    class Created(Aggregate.Created):
        TOPIC = "kaoping-test/Sample.Created.v1"
        ref: UUID
        at: datetime
        score: Decimal
        labels: list[str]
        weights: dict[str, Decimal]
        note: str | None

    class Scored(Aggregate.Event):
        TOPIC = "kaoping-test/Sample.Scored.v2"
        class_version = 2
        score: Decimal
        reason: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["reason"] = "(not recorded before v2)"

    @event(Created)
    def __init__(self, ref: UUID, at: datetime, score: Decimal, labels: list[str],
                 weights: dict[str, Decimal], note: str | None) -> None:
        self.score = score

    @event(Scored)
    def scored(self, score: Decimal, reason: str) -> None:
        self.score = score


mapper = MsgspecMapper(transcoder=NoTranscoder())
decimals = st.decimals(allow_nan=False, allow_infinity=False, places=4,
                       min_value=Decimal(-10**6), max_value=Decimal(10**6))


@given(ref=st.uuids(), at=st.datetimes(timezones=st.just(UTC)), score=decimals,
       labels=st.lists(st.text(max_size=20), max_size=5),
       weights=st.dictionaries(st.text(max_size=10), decimals, max_size=4),
       note=st.one_of(st.none(), st.text(max_size=50)))
def test_round_trip_keeps_types(ref: UUID, at: datetime, score: Decimal, labels: list[str],
                                weights: dict[str, Decimal], note: str | None) -> None:
    agg = Sample(ref=ref, at=at, score=score, labels=labels, weights=weights, note=note)
    original = agg.collect_events()[0]
    back = mapper.to_domain_event(mapper.to_stored_event(original))
    assert type(back) is Sample.Created
    assert back == original
    assert isinstance(back.ref, UUID)
    assert isinstance(back.score, Decimal)
    assert back.at.tzinfo is not None
    assert back.timestamp == original.timestamp


def _stored(topic: str, state: bytes) -> StoredEvent:
    return StoredEvent(originator_id=uuid4(), originator_version=1, topic=topic, state=state)


def _good_state() -> bytes:
    agg = Sample(ref=uuid4(), at=datetime.now(UTC), score=Decimal("1.5"), labels=[],
                 weights={}, note=None)
    return mapper.to_stored_event(agg.collect_events()[0]).state


def test_topic_is_the_explicit_stable_one() -> None:
    agg = Sample(ref=uuid4(), at=datetime.now(UTC), score=Decimal(1), labels=[], weights={},
                 note=None)
    assert mapper.to_stored_event(agg.collect_events()[0]).topic == (
        "kaoping-test/Sample.Created.v1")


@pytest.mark.parametrize(
    ("topic", "state", "words"),
    [
        ("kaoping-test/Sample.Created.v1", b"{not json", "cannot decode"),
        ("kaoping-test/Sample.Created.v1", b'{"ref": 1}', "cannot decode"),
        ("kaoping-test/Nope.v1", b"{}", "unknown event type"),
    ],
)
def test_garbled_payloads_fail_loudly(topic: str, state: bytes, words: str) -> None:
    with pytest.raises(MapperDeserialisationError, match=words):
        mapper.to_domain_event(_stored(topic, state))


def test_unknown_and_missing_fields_are_refused() -> None:
    good = _good_state()
    extra = good[:-1] + b',"zzz":1}'
    with pytest.raises(MapperDeserialisationError, match="unknown field"):
        mapper.to_domain_event(_stored("kaoping-test/Sample.Created.v1", extra))
    missing = good.replace(b'"note":null,', b"")
    with pytest.raises(MapperDeserialisationError, match="missing required field `note`"):
        mapper.to_domain_event(_stored("kaoping-test/Sample.Created.v1", missing))


def test_wrong_types_are_refused_not_coerced() -> None:
    wrong = _good_state().replace(b'"score":"1.5"', b'"score":[1]')
    with pytest.raises(MapperDeserialisationError, match="score"):
        mapper.to_domain_event(_stored("kaoping-test/Sample.Created.v1", wrong))


def test_old_versions_are_upcast() -> None:
    v1 = StoredEvent(originator_id=uuid4(), originator_version=2,
                     topic="kaoping-test/Sample.Scored.v2",
                     state=b'{"score":"7.5","timestamp":"2026-01-01T00:00:00+00:00"}')
    ev = mapper.to_domain_event(v1)
    assert ev.score == Decimal("7.5")
    assert ev.reason == "(not recorded before v2)"
    again = mapper.to_domain_event(mapper.to_stored_event(ev))
    assert again == ev


class _ScoreView(msgspec.Struct):
    score: Decimal


class _ReasonView(msgspec.Struct):
    score: Decimal
    reason: str


def test_field_views_decode_only_what_they_name_with_types_checked() -> None:
    stored = _stored("kaoping-test/Sample.Created.v1", _good_state())
    view = decode_fields(stored.topic, stored.state, _ScoreView,
                         lambda: pytest.fail("no whole event needed"))
    assert view.score == mapper.to_domain_event(stored).score
    assert isinstance(view.score, Decimal)
    wrong = _good_state().replace(b'"score":"1.5"', b'"score":[1]')
    with pytest.raises(MapperDeserialisationError, match="score"):
        decode_fields(stored.topic, wrong, _ScoreView, lambda: None)


def test_field_views_of_upcast_classes_go_through_the_whole_event() -> None:
    # A v1 payload has no "reason": a view straight from the bytes would fail or lie; the
    # whole event (upcast) is decoded instead.
    v1 = StoredEvent(originator_id=uuid4(), originator_version=2,
                     topic="kaoping-test/Sample.Scored.v2",
                     state=b'{"score":"7.5","timestamp":"2026-01-01T00:00:00+00:00"}')
    view = decode_fields(v1.topic, v1.state, _ReasonView, lambda: mapper.to_domain_event(v1))
    assert view == _ReasonView(score=Decimal("7.5"), reason="(not recorded before v2)")
