"""/api/v1/auth — what a client or identity provider needs to check people's bearer tokens."""

from __future__ import annotations

from litestar import Response, get
from litestar.datastructures import State

from service.tokens import Jwks


@get("/auth/jwks", opt={"public": True}, tags=["auth"], summary="Token verification keys (JWKS)")
async def jwks(state: State) -> Response[Jwks]:
    """The public keys that verify people's bearer tokens (RFC 7517 JWKS, Ed25519 per RFC
    8037): the current signing key first, then retired keys whose tokens may still be valid.
    A token's ``kid`` header names its key. Revoked keys are absent. Cache for a minute."""
    keys = state.services.tokens.keys.jwks()
    return Response(keys, headers={"Cache-Control": "public, max-age=60"})
