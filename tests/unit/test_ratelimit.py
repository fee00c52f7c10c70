"""Who a client is (X-Forwarded-For only from trusted proxies) and the ballot refusal budgets."""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import given
from hypothesis import strategies as st

from api.ratelimit import FailureLimiter, PrincipalLimiter, client_address, parse_networks

PROXIES = parse_networks("10.0.0.0/8, 192.168.1.1")
addresses = st.ip_addresses(v=4).map(str)


def scope(peer: str, *forwarded: str) -> dict[str, object]:
    return {"client": (peer, 41000),
            "headers": [(b"x-forwarded-for", f.encode()) for f in forwarded]}


@given(peer=addresses.filter(lambda a: not any(IPv4Address(a) in n for n in PROXIES)),
       spoofed=st.lists(st.lists(addresses, min_size=1, max_size=4), max_size=3))
def test_an_untrusted_peer_is_the_client_whatever_it_forwards(peer: str,
                                                              spoofed: list[list[str]]) -> None:
    headers = [", ".join(hops) for hops in spoofed]
    assert client_address(scope(peer, *headers), PROXIES) == peer


@given(client=addresses.filter(lambda a: not any(IPv4Address(a) in n for n in PROXIES)),
       spoofed=st.lists(addresses, max_size=3))
def test_behind_trusted_proxies_the_first_untrusted_hop_from_the_right(
        client: str, spoofed: list[str]) -> None:
    # What the client wrote itself comes first; each proxy appends the address it saw.
    header = ", ".join([*spoofed, client, "10.1.2.3"])
    assert client_address(scope("192.168.1.1", header), PROXIES) == client


def test_malformed_hops_and_ipv6_prefixes() -> None:
    assert client_address(scope("10.0.0.9", "bogus, 10.0.0.8"), PROXIES) == "10.0.0.8"
    assert client_address(scope("10.0.0.9"), PROXIES) == "10.0.0.9"  # only proxies: the last
    # one IPv6 subscriber (a /64) is one client, however many addresses it rotates through
    a = client_address(scope("2001:db8:1:2::1"), ())
    b = client_address(scope("2001:db8:1:2:ffff::9"), ())
    assert a == b == "2001:db8:1:2::/64"
    assert client_address(scope("2001:db8:1:3::1"), ()) != a
    assert client_address(scope("testclient"), PROXIES) == "testclient"


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_client_cannot_exhaust_the_session_budget() -> None:
    clock = Monotonic()
    limiter = FailureLimiter(per_client=20, per_session=200, window=60, monotonic=clock)
    for _ in range(1000):  # one client guessing as fast as it can
        if limiter.retry_after("6.6.6.6", "s1") is None:
            limiter.failed("6.6.6.6", "s1")
    refused = limiter.retry_after("6.6.6.6", "s1")
    assert refused is not None
    assert refused[1] == "ballot.refusals-per-client"
    assert 1 <= refused[0] <= 60
    assert limiter.retry_after("1.2.3.4", "s1") is None  # a voter elsewhere is not affected
    clock.now += 61  # the window slides: the guesser may try again
    assert limiter.retry_after("6.6.6.6", "s1") is None


@given(clients=st.integers(min_value=10, max_value=60), per_client=st.integers(1, 30))
def test_spread_guessing_throttles_the_guessers_never_a_clean_voter(clients: int,
                                                                   per_client: int) -> None:
    clock = Monotonic()
    limiter = FailureLimiter(per_client=per_client, per_session=10 * per_client, window=60,
                             monotonic=clock)
    for i in range(clients):
        for _ in range(per_client + 5):  # each over its own budget: excess is not counted
            if limiter.retry_after(f"10.9.0.{i}", "s1") is None:
                limiter.failed(f"10.9.0.{i}", "s1")
    assert limiter.retry_after("172.16.0.1", "s1") is None  # no refusal of its own: served
    limiter.failed("172.16.0.1", "s1")  # one mistake while the session is under attack
    refused = limiter.retry_after("172.16.0.1", "s1")
    assert refused is not None
    assert refused[1] == ("ballot.refusals-per-session" if per_client > 1
                          else "ballot.refusals-per-client")
    assert limiter.retry_after("172.16.0.2", "s2") is None  # other sessions are untouched


def test_the_token_bucket_refills_at_its_rate() -> None:
    clock = Monotonic()
    bucket = PrincipalLimiter(rate=2.0, burst=3, monotonic=clock)
    assert [bucket.take("a") for _ in range(4)] == [None, None, None, 1]
    assert bucket.take("b") is None  # per key
    clock.now += 0.5  # one token back
    assert bucket.take("a") is None
    assert bucket.take("a") == 1
