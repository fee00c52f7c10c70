"""审定: publication needs the committee's approval of the whole proposal, bound to its
fingerprint — refused without it, or after the proposal changed — through HTTP on both stores,
as every role that might try."""

from __future__ import annotations

from service.principals import IdentityKind, Role
from service.runtime import Services
from tests.conftest import bearer
from tests.e2e.test_cycle_scenario import (
    BASE,
    Client,
    People,
    _events,
    ok,
    refused,
    score_everything,
    setup_cycle,
)

DECISION = {"grade": "好", "reason": "群众公认度高", "minutes_ref": "常委会纪要2026-3"}


def sealed(client: Client, services: Services) -> People:
    who = People(services)
    setup_cycle(client, services, who)
    score_everything(client, who)
    ok(client.post(f"{BASE}/seal", json={}, headers=who.org))
    return who


def _approval(fingerprint: str) -> dict[str, str]:
    return {"results_fingerprint": fingerprint, "minutes_ref": "常委会纪要2026-2",
            "authority": "市委常委会"}


def test_publication_needs_the_committees_approval_of_exactly_what_it_publishes(
        client: Client, services: Services) -> None:
    who = sealed(client, services)
    publication = {"notified_on": "2026-03-01"}
    before = _events(services)
    refused(client.post(f"{BASE}/publication", json=publication, headers=who.org), 409,
            "publication.approved")
    assert _events(services) == before  # nothing half-written

    proposal = ok(client.get(f"{BASE}/proposal", headers=who.committee), 200)
    assert (proposal["phase"], proposal["approved_fingerprint"], proposal["approved"]) == (
        "sealed", None, False)
    first = proposal["results_fingerprint"]
    # Only the committee approves; the organizer who proposes may not, nor a leader.
    for headers in (who.org, who.l1, bearer(services, Role.SUPERVISOR, IdentityKind.STAFF, "s")):
        refused(client.post(f"{BASE}/approval", json=_approval(first), headers=headers), 403,
                "role")
    # The committee approves what it read, not something else.
    refused(client.post(f"{BASE}/approval", json=_approval("0" * 64), headers=who.committee),
            409, "approval.current-proposal")
    refused(client.post(f"{BASE}/approval", json=_approval("not hex"), headers=who.committee),
            400, "constraint")
    assert _events(services) == before
    ok(client.post(f"{BASE}/approval", json=_approval(first), headers=who.committee))
    assert ok(client.get(f"{BASE}/proposal", headers=who.org), 200)["approved"] is True

    # A committee decision after the approval changes the proposal: the approval no longer
    # covers it, and publication is refused until the committee approves the new one.
    ok(client.post(f"{BASE}/subjects/team:E2/decisions", json=DECISION, headers=who.committee))
    changed = ok(client.get(f"{BASE}/proposal", headers=who.committee), 200)
    assert changed["results_fingerprint"] != first
    assert (changed["approved_fingerprint"], changed["approved"]) == (first, False)
    before = _events(services)
    refused(client.post(f"{BASE}/publication", json=publication, headers=who.org), 409,
            "publication.approved-unchanged")
    assert _events(services) == before
    ok(client.post(f"{BASE}/approval", json=_approval(changed["results_fingerprint"]),
                   headers=who.committee))
    ok(client.post(f"{BASE}/publication", json=publication, headers=who.org))
    services.follower.catch_up()
    published = ok(client.get(f"{BASE}/corrections"), 200)
    assert published["results_fingerprint"] == changed["results_fingerprint"]
    after = ok(client.get(f"{BASE}/proposal", headers=who.org), 200)
    assert (after["phase"], after["approved"]) == ("published", True)
    # After publication there is nothing left to approve.
    refused(client.post(f"{BASE}/approval", json=_approval(after["results_fingerprint"]),
                        headers=who.committee), 409, "cycle.phase")


def test_the_proposal_is_for_evaluators_and_exists_from_the_seal(
        client: Client, services: Services) -> None:
    who = People(services)
    setup_cycle(client, services, who)
    refused(client.get(f"{BASE}/proposal"), 401, "authentication")
    refused(client.get(f"{BASE}/proposal", headers=who.p3), 403, "role")
    refused(client.get(f"{BASE}/proposal", headers=who.committee), 409, "cycle.phase")
    refused(client.post(f"{BASE}/approval", json=_approval("0" * 64), headers=who.committee),
            409, "cycle.phase")
