"""X-Forwarded-For through a real server (uvicorn, real TCP peers): believed only from
KAOPING_TRUSTED_PROXIES, so a client cannot rotate the header to escape its throttles."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.live_server import http, serve

THROTTLE = {"KAOPING_ANONYMOUS_BURST": "3", "KAOPING_ANONYMOUS_RATE_PER_SECOND": "0.001",
            "KAOPING_ANONYMOUS_THROTTLE_DELAY_SECONDS": "0"}


def test_a_spoofed_header_from_an_untrusted_peer_changes_nothing(tmp_path: Path) -> None:
    with serve(tmp_path, **THROTTLE) as srv:  # no trusted proxies: the peer is the client
        got = [http("GET", f"{srv.url}/api/v1/sessions/none-{i}",
                    headers={"X-Forwarded-For": f"203.0.113.{i}"}) for i in range(5)]
        assert [status for status, _ in got] == [404, 404, 404, 429, 429]
        assert got[3][1]["rule"] == "rate-limit.anonymous"
        assert http("GET", f"{srv.url}/health")[0] == 200  # liveness is never throttled


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget(tmp_path: Path) -> None:
    with serve(tmp_path, KAOPING_TRUSTED_PROXIES="127.0.0.1/32", **THROTTLE) as srv:
        distinct = [http("GET", f"{srv.url}/api/v1/sessions/none",
                         headers={"X-Forwarded-For": f"203.0.113.{i}"})[0] for i in range(6)]
        assert distinct == [404] * 6
        # One client behind the proxy, prepending made-up hops of its own: still one client.
        same = [http("GET", f"{srv.url}/api/v1/sessions/none",
                     headers={"X-Forwarded-For": f"10.{i}.0.1, 198.51.100.7"})[0]
                for i in range(5)]
        assert same == [404, 404, 404, 429, 429]
