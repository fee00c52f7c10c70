"""/api/v1/ledger — the public tamper-evident log: checkpoints, key, leaves, proofs.

Leaf hashes, checkpoints and proofs are public. Envelopes name streams and topics (which can
reveal who is under investigation), so only supervisors get them, on the same URL.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

import msgspec
from anyio import to_thread
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.params import QueryParameter

from api.auth import optional_principal
from api.mechanisms import INT64, decode_cursor, next_page
from api.openapi import problems
from service.ledger.keyring import LedgerKeyInfo
from service.ledger.log import MAX_LEAVES
from service.ledger.signer import list_checkpoints
from service.principals import Role

TEXT = "text/plain"  # Litestar appends "; charset=utf-8" itself
Index = Annotated[int, QueryParameter(ge=0, le=2**62)]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class LeafOut(msgspec.Struct, omit_defaults=True, kw_only=True):
    index: int
    leaf_hash: str  # base64, as in C2SP checkpoints and RFC 9162 tooling
    leaf_hash_hex: str  # the same 32 bytes in hex (sha256sum, the evidence bundle, explain)
    envelope: str | None = None  # supervisors only: base64 of the exact bytes hashed


class InclusionProof(msgspec.Struct, kw_only=True):
    index: int
    size: int
    leaf_hash: str  # base64
    leaf_hash_hex: str
    proof: list[str]  # base64, leaf to root


class ConsistencyProof(msgspec.Struct, rename={"from_": "from"}):
    from_: int
    to: int
    proof: list[str]


class CheckpointOut(msgspec.Struct, kw_only=True):
    size: int
    key_id: str
    signed_at: str
    note: str  # GET /api/v1/ledger/checkpoint?size=<size>: the signed note itself


class CheckpointPage(msgspec.Struct, kw_only=True):
    items: list[CheckpointOut]
    next_cursor: str | None


class LedgerKeys(msgspec.Struct):
    keys: list[LedgerKeyInfo]


class LedgerController(Controller):
    path = "/ledger"
    tags = ["ledger"]  # noqa: RUF012 -- Litestar's own attribute

    @get("/checkpoint", opt={"public": True}, media_type=TEXT, summary="A signed checkpoint",
         responses=problems(400, 404))
    async def checkpoint(self, state: State,
                         size: Annotated[int | None, QueryParameter(ge=0, le=INT64)] = None,
                         ) -> Response[bytes]:
        """The latest checkpoint (or the one signed at ``size``), as the exact C2SP signed-note
        bytes: origin, tree size, base64 root hash, blank line, Ed25519 signature line."""
        cp = await to_thread.run_sync(state.services.ledger.checkpoint, size)
        return Response(cp.note, media_type=TEXT, headers={"Cache-Control": "no-cache"})

    @get("/checkpoints", opt={"public": True}, summary="Every signed checkpoint",
         responses=problems(400))
    async def checkpoints(self, request: Request[Any, Any, Any], state: State,
                          cursor: Annotated[str | None, QueryParameter(
                              description="Opaque cursor from a previous page")] = None,
                          limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
                          ) -> Response[CheckpointPage]:
        """The checkpoints signed so far, newest first (tree size, signing key, time), each
        with the URL of its signed note; ``Link: rel="next"`` pages back."""
        after = decode_cursor(cursor, {})
        before = int(after) if after else None

        def read() -> list[tuple[int, str, str]]:
            with state.services.db.read() as cur:
                return list_checkpoints(cur, before, limit + 1)

        rows = await to_thread.run_sync(read)
        items = [CheckpointOut(size=size, key_id=key, signed_at=at,
                               note=f"/api/v1/ledger/checkpoint?size={size}")
                 for size, key, at in rows[:limit]]
        nxt, headers = next_page(request, len(rows), limit,
                                 str(items[-1].size) if items else "", {})
        return Response(CheckpointPage(items=items, next_cursor=nxt), headers=headers)

    @get("/key", opt={"public": True}, media_type=TEXT, summary="The verifier key")
    async def key(self, state: State) -> Response[str]:
        """The current C2SP verifier key: ``<name>+<hex key id>+<base64(0x01 || Ed25519 public
        key)>``. After a rotation, earlier keys are listed by ``/ledger/keys``."""
        return Response(state.services.signer.vkey + "\n", media_type=TEXT)

    @get("/keys", opt={"public": True}, summary="Every signing key, current and retired")
    async def keys(self, state: State) -> LedgerKeys:
        """Every verifier key of the log: the current one first, then retired ones, each with
        the checkpoints it signed (count, first and last tree size). A retired key names its
        successor and the handover checkpoint both signed (its size), and the recorded reason
        and authority. Checkpoints signed by a retired key stay verifiable with it."""
        services = state.services
        return LedgerKeys(await to_thread.run_sync(services.signer.keys, services.db))

    @get("/leaves", opt={"public": True}, summary="Leaf hashes by index",
         responses=problems(400))
    async def leaves(self, request: Request[Any, Any, Any], state: State,
                     start: Index, end: Annotated[int, QueryParameter(ge=1, le=2**62)],
                     ) -> Response[list[LeafOut]]:
        """Leaves ``start`` (inclusive) to ``end`` (exclusive), at most 1000 per page; a
        ``Link: rel="next"`` header continues. Supervisors also get each leaf's envelope."""
        principal = optional_principal(request)
        envelopes = principal is not None and principal.role == Role.SUPERVISOR
        views = await to_thread.run_sync(
            lambda: state.services.ledger.leaves(start, end, envelopes=envelopes))
        items = [LeafOut(index=v.index, leaf_hash=_b64(v.leaf_hash),
                         leaf_hash_hex=v.leaf_hash.hex(),
                         envelope=_b64(v.envelope) if v.envelope else None) for v in views]
        headers = {}
        if len(views) == MAX_LEAVES and views[-1].index + 1 < end:
            nxt = views[-1].index + 1
            headers["Link"] = f'<{request.url.path}?start={nxt}&end={end}>; rel="next"'
        return Response(items, headers=headers)

    @get("/proofs/inclusion", opt={"public": True}, summary="Inclusion proof",
         responses=problems(400, 404))
    async def inclusion(self, state: State, index: Index,
                        size: Annotated[int, QueryParameter(ge=1, le=2**62)]) -> InclusionProof:
        """RFC 9162 §2.1.3 audit path for leaf ``index`` in the tree of ``size`` leaves."""
        leaf, proof = await to_thread.run_sync(state.services.ledger.inclusion, index, size)
        return InclusionProof(index=index, size=size, leaf_hash=_b64(leaf),
                              leaf_hash_hex=leaf.hex(), proof=[_b64(p) for p in proof])

    @get("/proofs/consistency", opt={"public": True}, summary="Consistency proof",
         responses=problems(400, 404))
    async def consistency(self, state: State,
                          from_: Annotated[int, QueryParameter(name="from", ge=1, le=2**62)],
                          to: Annotated[int, QueryParameter(ge=1, le=2**62)],
                          ) -> ConsistencyProof:
        """RFC 9162 §2.1.4 proof that the tree of ``to`` leaves extends the tree of ``from``."""
        proof = await to_thread.run_sync(state.services.ledger.consistency, from_, to)
        return ConsistencyProof(from_, to, [_b64(p) for p in proof])
