"""A request whose Idempotency-Key lease ran out, and was taken over by a retry, writes nothing
when it finally completes: only the lease holder completes the key (both stores)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.cycle import Cycle
from domain.errors import Busy
from service.clock import FixedClock
from service.idempotency import Completed, Reservation, fingerprint
from service.runtime import Services
from tests.integration.kit import ORG


def test_a_request_that_lost_its_lease_writes_nothing(services: Services,
                                                      clock: FixedClock) -> None:
    idem, digest = services.idempotency, fingerprint("POST", "/api/v1/cycles", b'{"year":2031}')
    slow = idem.reserve(ORG.id, "k-1", digest, clock.now())
    assert isinstance(slow, Reservation)
    clock.advance(idem.lease + timedelta(seconds=1))  # the first attempt looks dead
    retry = idem.reserve(ORG.id, "k-1", digest, clock.now())
    assert isinstance(retry, Reservation) and retry.token != slow.token
    with pytest.raises(Busy) as refused:  # the slow first attempt finally tries to commit
        services.evaluation.open_cycle(ORG, 2031,
                                       after_append=idem.completer(ORG.id, "k-1", 201, slow))
    assert refused.value.rule == "idempotency-key.lease-lost"
    assert list(services.store.events.get(Cycle.id_for(2031))) == []  # rolled back with it
    written = services.evaluation.open_cycle(
        ORG, 2031, after_append=idem.completer(ORG.id, "k-1", 201, retry))
    replay = idem.reserve(ORG.id, "k-1", digest, clock.now())
    assert isinstance(replay, Completed)
    assert (replay.stream_id, replay.stream_version) == (written.stream_id, written.version)
