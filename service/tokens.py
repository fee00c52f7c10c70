"""People's bearer tokens: EdDSA JWTs signed by the current key of a keyset, checked by ``kid``.

The keyset lives in the key directory that every API process reads:

* ``<token_key_path>`` — the current private key (PEM, mode 0600); it signs new tokens;
* ``<token_key_path>.keyset.json`` — the public halves of earlier keys, each ``retired`` (it
  still verifies the tokens it signed until they expire: issued no later than ``retired_at``,
  never past ``retired_at`` + ttl) or ``revoked`` (refused at once);
  the private half of a retired key is destroyed when it is replaced;
* optionally ``KAOPING_TOKEN_JWKS_PATH`` — an external identity provider's JWKS (public keys
  only), trusted beside our own keys: that is how an IdP is plugged in.

A token's ``kid`` is the RFC 7638 thumbprint of its key. Each verification checks (one
``stat`` per file) whether another process rotated or revoked a key and reloads if so; a token
whose ``kid`` is still unknown forces one re-read at most every few seconds (a file system
whose change stamps lag), then is refused.

Every token needs ``iat`` and ``exp`` (``iat`` at most a minute ahead, ``exp`` after it); a
token signed by one of our keys lives at most the ttl (``exp - iat``). An IdP's tokens keep
their own lifetime.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import jwt
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from service.keys import (
    exclusive_lock,
    file_stamp,
    load_or_create_ed25519,
    private_pem,
    write_atomic,
)
from service.principals import Identity, Principal, PrincipalError, Role, parse_identity

UNKNOWN_KID_RELOAD_SECONDS = 5.0
CLOCK_SKEW_SECONDS = 60  # how far in the future a token's ``iat`` may be (another host's clock)
KeyStatus = Literal["current", "retired", "revoked", "external"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(public: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256) of an Ed25519 key: the members crv, kty, x in
    lexicographic order, no whitespace."""
    x = _b64url(public.public_bytes_raw())
    canonical = f'{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}'.encode()
    return _b64url(hashlib.sha256(canonical).digest())


class Jwk(msgspec.Struct, frozen=True, kw_only=True):
    """An RFC 8037 OKP public key in a JWKS (RFC 7517)."""

    kty: str = "OKP"
    crv: str = "Ed25519"
    x: str
    kid: str
    use: str = "sig"
    alg: str = "EdDSA"


class Jwks(msgspec.Struct, frozen=True):
    keys: list[Jwk]


class KeyEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An earlier key in ``<token_key_path>.keyset.json`` (public half only)."""

    kid: str
    x: str
    status: Literal["retired", "revoked"]
    retired_at: str
    revoked_at: str | None = None


class KeyFile(msgspec.Struct):
    keys: list[KeyEntry]


class TokenKeyInfo(msgspec.Struct, frozen=True, kw_only=True):
    kid: str
    status: KeyStatus
    retired_at: str | None = None
    revoked_at: str | None = None


@dataclass(frozen=True)
class VerifyingKey:
    kid: str
    status: KeyStatus  # never "revoked": those are refused
    key: Ed25519PublicKey
    retired_at: datetime | None = None


def _public(x: str) -> Ed25519PublicKey:
    raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
    return Ed25519PublicKey.from_public_bytes(raw)


def _external(path: Path) -> dict[str, Ed25519PublicKey]:
    """An IdP's JWKS: its Ed25519 signing keys by kid (other key types are skipped)."""
    try:
        document = json.loads(path.read_bytes())
        keys = document["keys"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = f"{path}: not a JWKS document ({exc})"
        raise PrincipalError(msg) from exc
    found = {}
    for jwk in keys:
        if (isinstance(jwk, dict) and jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519"
                and isinstance(jwk.get("kid"), str) and jwk.get("use", "sig") == "sig"):
            found[jwk["kid"]] = _public(str(jwk["x"]))
    return found


class TokenKeys:
    """The token signing keyset shared through the key directory (see the module docstring)."""

    def __init__(self, key_path: str | Path, *, jwks_path: str | Path | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.key_path = Path(key_path)
        self.keyset_path = Path(f"{key_path}.keyset.json")
        self.jwks_path = Path(jwks_path) if jwks_path else None
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._stamp: tuple[Any, ...] = ()
        self._forced_at = -UNKNOWN_KID_RELOAD_SECONDS
        self._current: tuple[str, Ed25519PrivateKey] | None = None
        self._keys: dict[str, tuple[KeyStatus, Ed25519PublicKey]] = {}
        self._retired_at: dict[str, datetime] = {}
        self._entries: list[KeyEntry] = []
        self._load()

    def _paths(self) -> tuple[Path, ...]:
        return (self.key_path, self.keyset_path, *([self.jwks_path] if self.jwks_path else []))

    def _load(self) -> None:
        stamp = file_stamp(*self._paths())
        private = load_or_create_ed25519(self.key_path)
        entries = self._read_entries()
        keys: dict[str, tuple[KeyStatus, Ed25519PublicKey]] = {}
        if self.jwks_path is not None:
            keys.update({kid: ("external", k) for kid, k in _external(self.jwks_path).items()})
        keys.update({e.kid: (e.status, _public(e.x)) for e in entries})
        kid = thumbprint(private.public_key())
        keys[kid] = ("current", private.public_key())
        try:
            retired_at = {e.kid: datetime.fromisoformat(e.retired_at) for e in entries}
        except ValueError as exc:
            msg = f"{self.keyset_path}: a retired_at is not an ISO 8601 time ({exc})"
            raise PrincipalError(msg) from exc
        with self._lock:
            self._current, self._keys, self._entries = (kid, private), keys, entries
            self._retired_at = retired_at
            self._stamp = stamp if stamp[0] is not None else file_stamp(*self._paths())

    def _read_entries(self) -> list[KeyEntry]:
        try:
            return msgspec.json.decode(self.keyset_path.read_bytes(), type=KeyFile).keys
        except FileNotFoundError:
            return []
        except msgspec.DecodeError as exc:
            msg = f"{self.keyset_path}: not a token keyset ({exc})"
            raise PrincipalError(msg) from exc

    def refresh(self) -> None:
        """Reload if another process rotated or revoked a key (one stat per key file)."""
        if file_stamp(*self._paths()) != self._stamp:
            self._load()

    def signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        self.refresh()
        assert self._current is not None  # noqa: S101 -- set by _load
        return self._current

    def public_key(self, kid: str) -> Ed25519PublicKey:
        """The key that verifies tokens with this ``kid``; PrincipalError if it is unknown or
        revoked."""
        return self.lookup(kid).key

    def lookup(self, kid: str) -> VerifyingKey:
        """The key that verifies tokens with this ``kid``, its status and (retired) when it
        was retired; PrincipalError if it is unknown or revoked."""
        self.refresh()
        found = self._keys.get(kid)
        if found is None and self._monotonic() - self._forced_at >= UNKNOWN_KID_RELOAD_SECONDS:
            self._forced_at = self._monotonic()
            self._load()
            found = self._keys.get(kid)
        if found is None:
            msg = f"bearer token signed by an unknown key (kid {kid!r})"
            raise PrincipalError(msg)
        status, key = found
        if status == "revoked":
            msg = f"bearer token signed by a revoked key (kid {kid!r})"
            raise PrincipalError(msg)
        return VerifyingKey(kid=kid, status=status, key=key,
                            retired_at=self._retired_at.get(kid) if status == "retired" else None)

    def jwks(self) -> Jwks:
        """Our keys that verify tokens now: the current one first, then the retired ones.
        Revoked keys and an external IdP's keys are not published here."""
        self.refresh()
        keys = sorted(((kid, s, k) for kid, (s, k) in self._keys.items()
                       if s in ("current", "retired")), key=lambda t: t[1] != "current")
        return Jwks([Jwk(x=_b64url(k.public_bytes_raw()), kid=kid) for kid, _, k in keys])

    def describe(self) -> list[TokenKeyInfo]:
        self.refresh()
        kid, _ = self.signing_key()
        return [TokenKeyInfo(kid=kid, status="current"),
                *(TokenKeyInfo(kid=e.kid, status=e.status, retired_at=e.retired_at,
                               revoked_at=e.revoked_at) for e in self._entries if e.kid != kid)]

    # --- changes (the CLI; every process picks them up through refresh()) -------------------

    def rotate(self, now: datetime, *, revoke_old: bool = False) -> tuple[str, str]:
        """A new current key; the old one is retired (or revoked at once, when it may have
        leaked). Returns (old kid, new kid)."""
        with exclusive_lock(f"{self.key_path}.lock"):
            old = load_or_create_ed25519(self.key_path)
            old_kid = thumbprint(old.public_key())
            entries = [e for e in self._read_entries() if e.kid != old_kid]
            entries.append(KeyEntry(
                kid=old_kid, x=_b64url(old.public_key().public_bytes_raw()),
                status="revoked" if revoke_old else "retired", retired_at=now.isoformat(),
                revoked_at=now.isoformat() if revoke_old else None))
            new = Ed25519PrivateKey.generate()
            # The keyset first: a process that sees the new key also sees the old one retired.
            write_atomic(self.keyset_path, msgspec.json.encode(KeyFile(entries)), 0o644)
            write_atomic(self.key_path, private_pem(new), 0o600)
        self._load()
        return old_kid, thumbprint(new.public_key())

    def revoke(self, kid: str, now: datetime) -> None:
        """Refuse tokens signed by a retired key from now on, in every process."""
        with exclusive_lock(f"{self.key_path}.lock"):
            current = thumbprint(load_or_create_ed25519(self.key_path).public_key())
            if kid == current:
                msg = (f"{kid} is the current token signing key; rotate it first "
                       "(kaoping keys rotate-token-key --revoke-old)")
                raise PrincipalError(msg)
            entries = self._read_entries()
            entry = next((e for e in entries if e.kid == kid), None)
            if entry is None or entry.status == "revoked":
                msg = f"no retired token signing key {kid}"
                raise PrincipalError(msg)
            entry.status, entry.revoked_at = "revoked", now.isoformat()
            write_atomic(self.keyset_path, msgspec.json.encode(KeyFile(entries)), 0o644)
        self._load()


class TokenIssuer:
    """Signs and checks people's bearer tokens: EdDSA JWTs with ``kid``, issuer, audience and
    expiry. Verification needs only public keys, looked up by ``kid`` in the keyset, so tokens
    of an external identity provider verify once its JWKS is configured."""

    def __init__(self, keys: TokenKeys, *, issuer: str, audience: str, ttl: timedelta) -> None:
        self.keys = keys
        self.issuer, self.audience, self.ttl = issuer, audience, ttl

    def issue(self, *, role: Role, acts_as: Identity, name: str, now: datetime) -> str:
        kid, key = self.keys.signing_key()
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(acts_as),
            "name": name,
            "role": role.value,
            "iat": int(now.timestamp()),
            "exp": int((now + self.ttl).timestamp()),
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})

    def verify(self, token: str, *, now: datetime) -> Principal:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as exc:
            msg = f"invalid bearer token: {exc}"
            raise PrincipalError(msg) from exc
        if not isinstance(kid, str) or not kid:
            msg = "invalid bearer token: no kid header (which key signed it?)"
            raise PrincipalError(msg)
        found = self.keys.lookup(kid)
        # Expiry is checked against the injected clock, not PyJWT's own time.time().
        try:
            claims = jwt.decode(token, found.key, algorithms=["EdDSA"],
                                audience=self.audience, issuer=self.issuer,
                                options={"require": ["exp", "iat", "sub", "iss", "aud"],
                                         "verify_exp": False, "verify_iat": False})
            identity = parse_identity(str(claims["sub"]))
            role = Role(claims["role"])
            expires, issued = _instant(claims, "exp"), _instant(claims, "iat")
        except (jwt.InvalidTokenError, KeyError, ValueError, TypeError) as exc:
            msg = f"invalid bearer token: {exc}"
            raise PrincipalError(msg) from exc
        self._check_times(found, issued, expires, now.timestamp())
        return Principal(id=f"person:{identity}", name=str(claims.get("name", identity)),
                         role=role, acts_as=identity, via="token")

    def _check_times(self, found: VerifyingKey, issued: int, expires: int, now: float) -> None:
        """``iat`` and ``exp`` make sense; a token of ours lives no longer than our ttl; a
        retired key's token was issued before it retired (a kept copy of a retired private key
        mints nothing new)."""
        if expires <= now:
            msg = "bearer token expired"
            raise PrincipalError(msg)
        if issued > now + CLOCK_SKEW_SECONDS:
            msg = "invalid bearer token: issued in the future (iat)"
            raise PrincipalError(msg)
        if expires <= issued:
            msg = "invalid bearer token: it expires before it was issued (exp <= iat)"
            raise PrincipalError(msg)
        if found.status == "external":
            return  # the identity provider's own lifetime
        ttl = self.ttl.total_seconds()
        if expires - issued > ttl:
            msg = (f"invalid bearer token: it claims a lifetime of {expires - issued} s, longer "
                   f"than the {int(ttl)} s this service issues")
            raise PrincipalError(msg)
        retired = found.retired_at
        if retired is not None and (issued > retired.timestamp()
                                    or now >= retired.timestamp() + ttl):
            msg = (f"bearer token signed by a retired key (kid {found.kid!r}) after it was "
                   "retired, or outlives it: a retired key only verifies the tokens it signed "
                   "while current, until they expire")
            raise PrincipalError(msg)


def _instant(claims: dict[str, Any], name: str) -> int:
    """A NumericDate claim as whole seconds; ValueError unless it is a number."""
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"the {name} claim is not a NumericDate"
        raise ValueError(msg)
    return int(value)
