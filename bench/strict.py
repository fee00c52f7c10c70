"""The cost of strict bodies (api/strict.py): the lexical pass (duplicate keys, text, plain
decimals) beside msgspec's typed decode alone, on a ballot (the hot write) and a scheme (the
largest body with decimals), per body. Baseline: msgspec alone, measured in the same run."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial

import msgspec

from api.routes.sessions import CastIn
from api.strict import StrictDecoder
from bench.common import table, timed
from domain.scheme import Scheme

BALLOT = {"credential": "a" * 22, "answers": {
    f"team:T{i:02d}": {"de": "excellent", "neng": "good", "qin": "good", "ji": "fair",
                       "lian": "good"} for i in range(15)}}
SCHEME = {"cycle": 2025, "pools": [
    {"group": f"g{i}", "kind": "team",
     "weights": {"leader-review": "0.4", "indicators": "0.3", "analysis": "0.3"},
     "bands": [{"grade": "好", "min_score": "90"}, {"grade": "较好", "min_score": "80"},
               {"grade": "一般", "min_score": "60"}, {"grade": "较差", "min_score": "0"}],
     "quotas": [{"grade": "好", "share": "0.34", "rounding": "floor"}]} for i in range(12)]}


def _many(decode: Callable[[bytes], object], raw: bytes, n: int) -> None:
    for _ in range(n):
        decode(raw)


def run(bodies: int = 20_000) -> str:
    rows = []
    for name, struct, body in (("ballot (15 subjects)", CastIn, BALLOT),
                               ("scheme (12 pools)", Scheme, SCHEME)):
        raw = json.dumps(body, ensure_ascii=False).encode()
        strict, plain = StrictDecoder(struct), msgspec.json.Decoder(struct)
        assert strict.check(raw) is None
        base = timed(partial(_many, plain.decode, raw, bodies)) / bodies
        full = timed(partial(_many, strict.check, raw, bodies)) / bodies
        rows.append((name, f"{len(raw):,}", f"{base * 1e6:.1f}", f"{full * 1e6:.1f}",
                     f"{full / base:.1f}x"))
    return table(f"strict bodies, µs per body ({bodies:,} bodies)", rows,
                 ("body", "bytes", "msgspec alone", "strict (lexical + msgspec)", "ratio"))
