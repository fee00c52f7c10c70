"""Rotation and revocation of the token signing key, through the real app and the real CLI."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from litestar.testing import TestClient

from api import create_app
from service.clock import FixedClock
from service.principals import Identity, IdentityKind, Role
from service.runtime import Services
from service.settings import Settings
from service.tokens import TokenIssuer, TokenKeys, thumbprint
from tests.conftest import bearer
from tests.e2e.test_cli import _kaoping

Client = TestClient[Any]
MINE = "/api/v1/webhooks/subscriptions"  # any authenticated person may list their own


def _refused(resp: Any, words: str) -> dict[str, Any]:
    assert resp.status_code == 401, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["type"].endswith("/unauthorized")
    assert body["rule"] == "authentication"
    assert words in body["detail"], body["detail"]
    return body


def _kid(headers: dict[str, str]) -> str:
    token = headers["Authorization"].removeprefix("Bearer ")
    return str(jwt.get_unverified_header(token)["kid"])


def _jwks_kids(client: Client) -> list[str]:
    resp = client.get("/api/v1/auth/jwks")
    assert resp.status_code == 200
    return [k["kid"] for k in resp.json()["keys"]]


def test_tokens_carry_the_kid_of_the_current_key_which_the_jwks_publishes(
        client: Client, services: Services) -> None:
    headers = bearer(services, Role.ORGANIZER)
    kid = _kid(headers)
    [jwk] = client.get("/api/v1/auth/jwks").json()["keys"]
    assert jwk == {"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "alg": "EdDSA",
                   "x": jwk["x"]}
    # The kid is the RFC 7638 thumbprint of the published key, so anyone can recompute it.
    public = jwt.algorithms.OKPAlgorithm.from_jwk(json.dumps(jwk))
    assert isinstance(public, Ed25519PublicKey)
    assert thumbprint(public) == kid
    token = headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, public, algorithms=["EdDSA"], audience="kaoping-api",
                        options={"verify_exp": False})  # the tests' clock is not the wall's
    assert claims["role"] == "organizer"
    assert client.get(MINE, headers=headers).status_code == 200


def test_a_retired_key_verifies_until_revoked_then_its_tokens_are_refused(
        client: Client, services: Services) -> None:
    before = bearer(services, Role.ORGANIZER, IdentityKind.STAFF, "org-1")
    old_kid, new_kid = services.tokens.keys.rotate(services.clock.now())
    assert old_kid == _kid(before) != new_kid
    after = bearer(services, Role.ORGANIZER, IdentityKind.STAFF, "org-1")
    assert _kid(after) == new_kid
    assert _jwks_kids(client) == [new_kid, old_kid]
    assert client.get(MINE, headers=before).status_code == 200  # still valid: retired
    assert client.get(MINE, headers=after).status_code == 200

    services.tokens.keys.revoke(old_kid, services.clock.now())
    _refused(client.get(MINE, headers=before), "revoked key")
    assert client.get(MINE, headers=after).status_code == 200
    assert _jwks_kids(client) == [new_kid]


def test_a_retired_keys_tokens_still_expire(client: Client, services: Services,
                                            clock: FixedClock) -> None:
    before = bearer(services, Role.ORGANIZER)
    services.tokens.keys.rotate(clock.now())
    clock.advance(timedelta(seconds=services.settings.token_ttl_seconds))
    _refused(client.get(MINE, headers=before), "expired")


def test_unknown_missing_or_forged_kids_are_refused(client: Client, services: Services) -> None:
    claims = {"iss": "kaoping", "aud": "kaoping-api", "sub": "staff:x", "role": "supervisor",
              "iat": int(services.clock.now().timestamp()),
              "exp": int(services.clock.now().timestamp()) + 600}
    stranger = Ed25519PrivateKey.generate()
    unknown = jwt.encode(claims, stranger, algorithm="EdDSA",
                         headers={"kid": thumbprint(stranger.public_key())})
    _refused(client.get(MINE, headers={"Authorization": f"Bearer {unknown}"}), "unknown key")
    no_kid = jwt.encode(claims, stranger, algorithm="EdDSA")
    _refused(client.get(MINE, headers={"Authorization": f"Bearer {no_kid}"}), "no kid")
    # A stranger's signature under our kid: the kid finds our key, whose check then fails.
    ours = _kid(bearer(services, Role.ORGANIZER))
    forged = jwt.encode(claims, stranger, algorithm="EdDSA", headers={"kid": ours})
    _refused(client.get(MINE, headers={"Authorization": f"Bearer {forged}"}), "invalid")


def test_every_process_sees_a_rotation_and_a_revocation_at_once(
        client: Client, services: Services, settings: Settings) -> None:
    """Another process (here: its own keyset over the same directory) rotates and revokes;
    the serving process neither restarts nor refuses a valid token."""
    other = TokenIssuer(TokenKeys(settings.token_key_path), issuer="kaoping",
                        audience="kaoping-api", ttl=timedelta(minutes=15))
    before = bearer(services, Role.ORGANIZER)
    old_kid, new_kid = other.keys.rotate(services.clock.now())
    token = other.issue(role=Role.ORGANIZER, acts_as=Identity(IdentityKind.STAFF, "o"),
                        name="o", now=services.clock.now())
    assert client.get(MINE, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get(MINE, headers=before).status_code == 200
    assert _jwks_kids(client) == [new_kid, old_kid]
    other.keys.revoke(old_kid, services.clock.now())
    _refused(client.get(MINE, headers=before), "revoked")


def test_rotating_with_revoke_old_refuses_the_old_tokens_at_once(
        client: Client, services: Services) -> None:
    before = bearer(services, Role.ORGANIZER)
    old_kid, _ = services.tokens.keys.rotate(services.clock.now(), revoke_old=True)
    _refused(client.get(MINE, headers=before), "revoked")
    assert old_kid not in _jwks_kids(client)
    assert client.get(MINE, headers=bearer(services, Role.ORGANIZER)).status_code == 200


def test_an_external_identity_providers_jwks_is_trusted_but_not_republished(
        settings: Settings, clock: FixedClock, tmp_path: Path) -> None:
    idp = Ed25519PrivateKey.generate()
    x = base64.urlsafe_b64encode(idp.public_key().public_bytes_raw()).rstrip(b"=").decode()
    jwks_path = tmp_path / "idp-jwks.json"
    jwks_path.write_text(json.dumps({"keys": [
        {"kty": "RSA", "kid": "rsa-1", "n": "AQAB", "e": "AQAB"},  # not ours to use: skipped
        {"kty": "OKP", "crv": "Ed25519", "kid": "idp-2026", "x": x, "use": "sig"}]}))
    services = Services(settings.with_overrides(token_jwks_path=str(jwks_path)), clock=clock)
    try:
        claims = {"iss": "kaoping", "aud": "kaoping-api", "sub": "leader:L7", "role": "leader",
                  "iat": int(clock.now().timestamp()), "exp": int(clock.now().timestamp()) + 60}
        token = jwt.encode(claims, idp, algorithm="EdDSA", headers={"kid": "idp-2026"})
        principal = services.tokens.verify(token, now=clock.now())
        assert (principal.id, principal.role) == ("person:leader:L7", Role.LEADER)
        assert "idp-2026" not in [k.kid for k in services.tokens.keys.jwks().keys]
    finally:
        services.close()


def test_the_cli_rotates_lists_and_revokes(client: Client, services: Services,
                                           settings: Settings) -> None:
    before = bearer(services, Role.ORGANIZER)
    out = _kaoping(settings, "keys", "rotate-token-key")
    assert out.returncode == 0, out.stderr
    new_kid = out.stdout.strip()
    old_kid = _kid(before)
    assert f"{old_kid} is retired" in out.stderr
    listed = [json.loads(line) for line in
              _kaoping(settings, "keys", "token-keys").stdout.splitlines()]
    assert [(k["kid"], k["status"]) for k in listed] == [(new_kid, "current"),
                                                          (old_kid, "retired")]
    assert client.get(MINE, headers=before).status_code == 200

    refused = _kaoping(settings, "keys", "revoke-token-key", "--", new_kid)
    assert refused.returncode == 2
    assert "rotate it first" in refused.stderr
    out = _kaoping(settings, "keys", "revoke-token-key", "--", old_kid)
    assert out.returncode == 0, out.stderr
    _refused(client.get(MINE, headers=before), "revoked")
    assert "PRIVATE" not in Path(f"{settings.token_key_path}.keyset.json").read_text()


def _signed(key: Ed25519PrivateKey, *, iat: float | None, exp: float | None,
            role: str = "supervisor", kid: str | None = None) -> dict[str, str]:
    claims: dict[str, Any] = {"iss": "kaoping", "aud": "kaoping-api", "sub": "staff:x",
                              "role": role}
    claims |= {k: int(v) for k, v in (("iat", iat), ("exp", exp)) if v is not None}
    token = jwt.encode(claims, key, algorithm="EdDSA",
                       headers={"kid": kid or thumbprint(key.public_key())})
    return {"Authorization": f"Bearer {token}"}


def test_a_kept_copy_of_a_retired_key_mints_no_new_tokens(
        client: Client, services: Services, settings: Settings, clock: FixedClock) -> None:
    kept = load_pem_private_key(Path(settings.token_key_path).read_bytes(), None)
    assert isinstance(kept, Ed25519PrivateKey)
    rotated = clock.now().timestamp()
    old_kid, _ = services.tokens.keys.rotate(clock.now())
    ttl = settings.token_ttl_seconds
    # Signed while it was current, within the ttl: still valid until it expires.
    honest = _signed(kept, iat=rotated - 10, exp=rotated - 10 + ttl, kid=old_kid)
    assert client.get(MINE, headers=honest).status_code == 200
    # Minted after the rotation (the review's case: 30 days later, valid ten years).
    clock.advance(timedelta(days=30))
    later = clock.now().timestamp()
    _refused(client.get(MINE, headers=_signed(kept, iat=later, exp=later + 3650 * 86400)),
             "lifetime")
    _refused(client.get(MINE, headers=_signed(kept, iat=later, exp=later + ttl)),
             "retired key")
    # Backdated to before the rotation: expired with the ttl, or claiming a longer life.
    _refused(client.get(MINE, headers=_signed(kept, iat=rotated - 10, exp=later + ttl)),
             "lifetime")
    _refused(client.get(MINE, headers=_signed(kept, iat=rotated, exp=rotated + ttl)),
             "expired")


def test_our_tokens_live_no_longer_than_the_ttl_and_carry_a_sane_iat(
        client: Client, services: Services, settings: Settings, clock: FixedClock) -> None:
    _, current = services.tokens.keys.signing_key()
    now, ttl = clock.now().timestamp(), settings.token_ttl_seconds
    assert client.get(MINE, headers=_signed(current, iat=now, exp=now + ttl)).status_code == 200
    _refused(client.get(MINE, headers=_signed(current, iat=now, exp=now + ttl + 1)), "lifetime")
    _refused(client.get(MINE, headers=_signed(current, iat=None, exp=now + 60)), "iat")
    _refused(client.get(MINE, headers=_signed(current, iat=now + 86400, exp=now + 86400 + 60)),
             "issued in the future")
    _refused(client.get(MINE, headers=_signed(current, iat=now + 30, exp=now + 20)),
             "expires before it was issued")
    wrong = jwt.encode({"iss": "kaoping", "aud": "kaoping-api", "sub": "staff:x",
                        "role": "supervisor", "iat": "yesterday", "exp": int(now) + 60},
                       current, algorithm="EdDSA",
                       headers={"kid": thumbprint(current.public_key())})
    _refused(client.get(MINE, headers={"Authorization": f"Bearer {wrong}"}), "invalid")


def test_an_identity_providers_tokens_keep_their_lifetime_but_need_a_sane_iat(
        settings: Settings, clock: FixedClock, tmp_path: Path) -> None:
    idp = Ed25519PrivateKey.generate()
    x = base64.urlsafe_b64encode(idp.public_key().public_bytes_raw()).rstrip(b"=").decode()
    jwks_path = tmp_path / "idp-jwks.json"
    jwks_path.write_text(json.dumps({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "kid": "idp-2026", "x": x, "use": "sig"}]}))
    configured = settings.with_overrides(token_jwks_path=str(jwks_path))
    services = Services(configured, clock=clock)
    try:
        with TestClient(app=create_app(configured, services=services)) as client:
            now = clock.now().timestamp()
            day = _signed(idp, iat=now, exp=now + 86400, kid="idp-2026")  # the IdP's own ttl
            assert client.get(MINE, headers=day).status_code == 200
            _refused(client.get(MINE, headers=_signed(idp, iat=None, exp=now + 60,
                                                      kid="idp-2026")), "iat")
            _refused(client.get(MINE, headers=_signed(idp, iat=now + 3600, exp=now + 7200,
                                                      kid="idp-2026")), "issued in the future")
            _refused(client.get(MINE, headers=_signed(idp, iat=now - 60, exp=now - 1,
                                                      kid="idp-2026")), "expired")
    finally:
        services.close()
