"""Issue 7: refusals of evaluation sessions, credentials and ballots, over HTTP where a request
reaches them (status, problem type, rule, field, and nothing written), else on the service."""

from __future__ import annotations

import copy
from concurrent.futures import Future
from typing import Any

import pytest
from litestar.testing import TestClient

from domain.ballots import credential_hash
from domain.errors import InvalidInput
from service.group_commit import VersionTaken
from service.principals import IdentityKind, Role
from service.runtime import Services
from tests.conftest import bearer
from tests.e2e.test_ballots import DEFINITION, Box, S, ok
from tests.e2e.test_refusals_cycle import ORG
from tests.e2e.test_refusals_scheme import log_length, refused_with

Client = TestClient[Any]
URL = f"/api/v1/sessions/{S}"


def _version(services: Services) -> int:
    return services.sessions.session(S).version


@pytest.fixture
def box(client: Client, services: Services) -> Box:
    return Box(client, services)


def _def(**changes: Any) -> dict[str, Any]:
    d = copy.deepcopy(DEFINITION)
    for path, value in changes.items():
        target: Any = d
        *parents, last = path.split("__")
        for p in parents:
            target = target[int(p)] if isinstance(target, list) else target[p]
        target[last] = value
    return d


@pytest.mark.parametrize(("definition", "rule", "field"), [
    (_def(subjects=[]), "session.unique", "subjects"),
    (_def(subjects=["team:E1", "team:E1"]), "session.unique", "subjects"),
    (_def(items=[{"code": "de", "label": "德"}, {"code": "de", "label": "又德"}]),
     "session.unique", "items"),
    (_def(classes__1__code="cadres"), "session.unique", "classes"),
    (_def(classes__1__weight="0.3"), "session.weights-sum-to-one", "classes"),
    (_def(rules__top_option="best"), "session.top-option", "rules.top_option"),
    (_def(rules__top_option=None), "session.top-option", "rules.top_option"),
    (_def(rules__max_top_share="0"), "share.range", "rules.max_top_share"),
    (_def(rules__max_top_share="1.5"), "share.range", "rules.max_top_share"),
    (_def(rules__quorum="1.01"), "share.range", "rules.quorum"),
    (_def(rules__quorum_source=" "), "session.quorum-source", "rules.quorum_source"),
], ids=["no-subjects", "subject-twice", "item-twice", "class-twice", "weights", "top-option",
        "limit-without-top-option", "top-share-zero", "top-share-above-one", "quorum-above-one",
        "quorum-without-source"])
def test_an_invalid_definition_is_refused(client: Client, services: Services,
                                          definition: dict[str, Any], rule: str,
                                          field: str) -> None:
    org = bearer(services, Role.ORGANIZER, IdentityKind.STAFF, "org-1")
    refused_with(client.post("/api/v1/sessions", json=definition, headers=org), 422,
                 "invalid-input", rule, field)
    assert log_length(services) == 0
    refused_with(client.get(URL), 404, "not-found", "session.exists", "session")


def test_a_session_code_is_used_once(box: Box, client: Client, services: Services) -> None:
    before = log_length(services)
    refused_with(client.post("/api/v1/sessions", json=DEFINITION, headers=box.org), 409,
                 "conflict", "session.unique", "code")
    assert log_length(services) == before


def test_session_state_and_rater_class(box: Box, client: Client, services: Services) -> None:
    version, before = _version(services), log_length(services)
    refused_with(client.post(f"{URL}/freeze", json={}, headers=box.org), 409, "conflict",
                 "session.state")  # frozen already
    refused_with(client.post(f"{URL}/close", json={}, headers=box.org), 409, "conflict",
                 "session.state")  # not open yet
    refused_with(client.post(f"{URL}/credentials", json={"rater_class": "aliens", "count": 1},
                             headers=box.org), 422, "invalid-input", "session.rater-class",
                 "rater_class")
    refused_with(client.get(f"{URL}/board"), 409, "conflict", "board.after-close")
    assert (_version(services), log_length(services)) == (version, before)
    assert services.sessions.session(S).state.value == "frozen"


def test_credentials_are_issued_one_to_5000_at_a_time(box: Box, services: Services) -> None:
    """The request body bounds count too (400); the service refuses on its own as well."""
    version = _version(services)
    for count in (0, 5001):
        with pytest.raises(InvalidInput) as caught:
            services.sessions.issue(ORG, S, "cadres", count)
        assert (caught.value.rule, caught.value.field) == ("credentials.count", "count")
    assert _version(services) == version


def test_revocations_and_revoked_credentials(box: Box, client: Client,
                                             services: Services) -> None:
    version, before = _version(services), log_length(services)
    refused_with(client.post(f"{URL}/credentials/revocations", headers=box.org,
                             json={"credential_hash": "00" * 32, "reason": "lost"}),
                 422, "invalid-input", "credential.issued", "credential_hash")
    assert (_version(services), log_length(services)) == (version, before)
    # Exactly one of the printed code and the hash.
    first = box.cadres[0]
    both = {"credential": first, "credential_hash": credential_hash(S, first), "reason": "lost"}
    for both_or_none in ({"reason": "lost"}, both):
        refused_with(client.post(f"{URL}/credentials/revocations", headers=box.org,
                                 json=both_or_none),
                     422, "invalid-input", "credential.one-of", "credential")
    refused_with(client.post(f"{URL}/credentials/revocations", headers=box.org,
                             json={"credential": "NOT-A-CODE", "reason": "lost"}),
                 422, "invalid-input", "credential.issued", "credential_hash")
    assert (_version(services), log_length(services)) == (version, before)
    lost, torn = box.cadres[0], box.cadres[1]
    ok(client.post(f"{URL}/credentials/revocations", headers=box.org,
                   json={"credential_hash": credential_hash(S, lost), "reason": "lost"}))
    # By the code printed on the slip: the server hashes it; the code itself is not stored.
    ok(client.post(f"{URL}/credentials/revocations", headers=box.org,
                   json={"credential": torn, "reason": "选票纸损毁"}))
    assert torn not in str(services.sessions.session(S).revoked)
    box.open()
    before = log_length(services)
    answers = {"team:E1": {"de": "good", "ji": "good"}, "team:E2": {"de": "good", "ji": "fair"}}
    for code in (lost, torn):
        refused_with(box.cast(code, answers), 422, "invalid-input", "credential.revoked",
                     "credential")
    assert log_length(services) == before


def test_a_revote_racing_another_is_refused(client: Client, services: Services,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Revoting allowed; the replacing ballot finds its version taken by a concurrent one."""
    org = bearer(services, Role.ORGANIZER, IdentityKind.STAFF, "org-1")
    ok(client.post("/api/v1/sessions", json=_def(rules__revote=True), headers=org))
    ok(client.post(f"{URL}/freeze", json={}, headers=org))
    code = ok(client.post(f"{URL}/credentials", json={"rater_class": "cadres", "count": 1},
                          headers=org))["codes"][0]
    ok(client.post(f"{URL}/open", json={}, headers=org))

    def cast(answers: dict[str, dict[str, str]]) -> Any:
        return client.post(f"{URL}/ballots", json={"credential": code, "answers": answers})

    first = {"team:E1": {"de": "good", "ji": "good"}, "team:E2": {"de": "good", "ji": "fair"}}
    ok(cast(first))
    before = log_length(services)

    def taken(_event: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_exception(VersionTaken("taken"))
        return future

    monkeypatch.setattr(services.sessions.writer, "submit", taken)
    second = {"team:E1": {"de": "fair", "ji": "good"}, "team:E2": {"de": "good", "ji": "fair"}}
    refused_with(cast(second), 409, "conflict", "ballot.concurrent-revote",
                 "credential")
    monkeypatch.undo()
    assert log_length(services) == before
