"""The console's sign-in: a person's bearer token, posted once, becomes a sealed session cookie.

The cookie holds who signed in (role, identity, name), a random session id and its expiry,
sealed with AES-GCM (the browser can neither read nor alter it) under a key derived from
``KAOPING_CONSOLE_KEY_PATH``. It is HttpOnly, SameSite=Strict, Path=/console, and Secure when
the page was served over https. Signing out records the session id (service/console_sessions.py),
which is refused from then on. Every form carries a CSRF token: an HMAC of the session id (or,
on the sign-in form, of a random pre-session cookie) under a second derived key.

The console never reads anything itself: each page calls the API in-process with a bearer token
issued for the signed-in principal (service/tokens.py), so every read is authorised, refused
and recorded exactly as the same person's API call would be (api/console/upstream.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime
from functools import cache

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service.keys import load_or_create_ed25519
from service.principals import Identity, IdentityKind, Principal, Role

COOKIE = "kaoping_console"
PRE_COOKIE = "kaoping_console_pre"  # the sign-in form's own CSRF secret, before a session
PATH = "/console"


class Session(msgspec.Struct, frozen=True, kw_only=True):
    sid: str
    role: Role
    kind: IdentityKind
    ident: str
    name: str
    expires: int  # epoch seconds

    @property
    def acts_as(self) -> Identity:
        return Identity(self.kind, self.ident)


class Keys:
    def __init__(self, seal: bytes, csrf: bytes) -> None:
        self.aead = AESGCM(seal)
        self.csrf = csrf


def _derive(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)


@cache
def keys_for(path: str) -> Keys:
    material = load_or_create_ed25519(path).private_bytes_raw()
    return Keys(_derive(material, b"kaoping console cookie v1"),
                _derive(material, b"kaoping console csrf v1"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def open_session(principal: Principal, now: datetime, lifetime_s: int) -> Session:
    acts_as = principal.acts_as
    if acts_as is None:  # people's tokens always name who they act as
        msg = "the token names nobody to act as"
        raise ValueError(msg)
    return Session(sid=secrets.token_hex(16), role=principal.role, kind=acts_as.kind,
                   ident=acts_as.id, name=principal.name,
                   expires=int(now.timestamp()) + lifetime_s)


def seal(keys: Keys, session: Session) -> str:
    nonce = secrets.token_bytes(12)
    return _b64(nonce + keys.aead.encrypt(nonce, msgspec.json.encode(session), COOKIE.encode()))


def unseal(keys: Keys, value: str | None, now: datetime) -> Session | None:
    """The session in the cookie, or None (absent, altered, another key's, or expired)."""
    if not value:
        return None
    try:
        raw = _unb64(value)
        plain = keys.aead.decrypt(raw[:12], raw[12:], COOKIE.encode())
        session = msgspec.json.decode(plain, type=Session)
    except (ValueError, InvalidTag, msgspec.DecodeError):
        return None
    return session if session.expires > now.timestamp() else None


def csrf_token(keys: Keys, secret: str) -> str:
    return _b64(hmac.new(keys.csrf, secret.encode(), hashlib.sha256).digest())


def csrf_ok(keys: Keys, secret: str | None, given: str | None) -> bool:
    return bool(secret and given) and hmac.compare_digest(
        csrf_token(keys, secret or ""), given or "")
