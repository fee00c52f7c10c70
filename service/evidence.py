"""Evidence bundles: everything an investigator needs to check one published result offline.

A bundle holds, for one subject's comparison pool: a signed checkpoint; every event of the
pool's evidence streams (the cycle, each subject's file, the previous cycle) with its envelope
fields and an RFC 9162 inclusion proof — payloads included where the computation needs them,
only their hash for restricted material (interview notes); every pool's published results (so
their fingerprint can be matched with the publication event) and the previous cycle's; and,
optionally, a consistency proof from an earlier checkpoint the investigator already holds (by
default the one printed in the year-end announcement). ``service/verify.py`` checks it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
from eventsourcing.application import project_aggregate
from eventsourcing.persistence import StoredEvent

from domain.cycle import Cycle, Phase
from domain.errors import Conflict
from domain.ledger_keys import LedgerKeys
from domain.scheme import SubjectKind
from domain.scoring import PoolEvidence, PoolResult, score_pool
from domain.subject_file import SubjectFile
from service.db import as_uuid, events_row_id
from service.ledger import merkle
from service.ledger.checkpoint import Checkpoint
from service.ledger.envelope import ZERO_HASH
from service.ledger.tree import node_reader

if TYPE_CHECKING:
    from eventsourcing.persistence import Mapper

    from service.db import Cursor
    from service.runtime import Services

FORMAT = "kaoping-evidence/1"
RESTRICTED_TOPICS = frozenset({SubjectFile.InspectionNoted.TOPIC})


class BundleEvent(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    stream_id: str
    version: int
    topic: str
    payload: str | None  # base64 of the stored bytes; None for restricted material
    payload_hash: str  # hex SHA-256 of the stored bytes
    leaf_hash: str  # hex
    proof: list[str]  # hex inclusion proof against the bundle's checkpoint


class Consistency(msgspec.Struct, frozen=True, kw_only=True):
    from_size: int
    proof: list[str]  # hex RFC 9162 consistency proof from from_size to the checkpoint's size


class KeyHandover(msgspec.Struct, frozen=True, kw_only=True):
    """A ledger key rotation: the checkpoint signed by the retired key and its successor, the
    rotation event (with its inclusion proof against that checkpoint) naming both keys, and a
    consistency proof from that checkpoint to the bundle's. A verifier that trusts either key
    learns the other from it."""

    checkpoint: str  # the handover note, both signature lines
    event: BundleEvent
    previous_leaf: str  # hex: the leaf of the rotation event's stream predecessor
    consistency: list[str]  # hex, from the handover's size to the bundle checkpoint's


class Bundle(msgspec.Struct, kw_only=True):
    format: str
    origin: str
    checkpoint: str  # the signed note, exactly as signed
    consistency: Consistency | None
    year: int
    subject: str
    group: str
    kind: SubjectKind
    score_version: str
    events: list[BundleEvent]
    results: list[PoolResult]  # every pool, as published
    previous_results: list[PoolResult] | None  # the previous cycle's, as published
    handovers: list[KeyHandover] = []  # every ledger key rotation up to the checkpoint
    # Whether the ballots on the boards of the pool's ballot sessions are included (for a
    # recount). They link each voter's tracker to their answers, so only supervisors get
    # them (docs/evidence.md); without them the verifier checks the recorded scores against
    # the tally the session's close recorded.
    ballots: bool = False


def stream_rows(cur: Cursor, stream_id: UUID, below: int) -> list[tuple[Any, ...]]:
    """(position, version, topic, state, leaf_hash) of the stream's events before ``below``."""
    rid = events_row_id(cur.engine)
    cur.execute(
        "SELECT l.position, e.originator_version, e.topic, e.state, l.leaf_hash FROM "  # noqa: S608
        f"kaoping_ledger l JOIN kaoping_events e ON e.{rid} = l.notification_id WHERE "
        "l.stream_id = %s AND l.position < %s ORDER BY l.stream_version", (stream_id, below))
    return cur.fetchall()


def replay_as_of(cur: Cursor, mapper: Mapper[UUID], stream_id: UUID, position: int) -> Any:
    """The aggregate as of log position ``position`` (inclusive); None before it existed."""
    events = [mapper.to_domain_event(StoredEvent(stream_id, int(v), str(t), bytes(s)))
              for _, v, t, s, _ in stream_rows(cur, stream_id, position + 1)]
    return project_aggregate(None, events) if events else None


def published_position(cur: Cursor, year: int) -> int | None:
    cur.execute("SELECT l.position FROM kaoping_ledger l JOIN kaoping_events e ON "  # noqa: S608
                f"e.{events_row_id(cur.engine)} = l.notification_id WHERE l.stream_id = %s "
                "AND e.topic = %s", (Cycle.id_for(year), Cycle.Published.TOPIC))
    row = cur.fetchone()
    return None if row is None else int(row[0])


def pools_as_of(cur: Cursor, mapper: Mapper[UUID], year: int, position: int,
                previous: dict[str, int]) -> list[PoolResult]:
    """Every pool of the cycle computed from the streams as they were at ``position``."""
    cycle = replay_as_of(cur, mapper, Cycle.id_for(year), position)
    if not isinstance(cycle, Cycle) or cycle.scheme is None:
        return []
    out = []
    for group, kind in sorted({(e.group, e.kind) for e in cycle.roster}):
        files = [f for e in cycle.pool(group, kind)
                 if isinstance(f := replay_as_of(cur, mapper, SubjectFile.id_for(year, e.subject),
                                                 position), SubjectFile)]
        evidence = PoolEvidence(group=group, kind=kind,
                                subjects=[f.evidence(cycle.scheme) for f in files],
                                previous_ranks={f.subject: previous[f.subject] for f in files
                                                if f.subject in previous})
        out.append(score_pool(cycle.scheme, evidence))
    return out


def ranks_of(results: Sequence[PoolResult]) -> dict[str, int]:
    """Every subject's rank, as the next cycle's rank change (位次进退) reads it."""
    return {r.subject: r.rank for p in results for r in p.results}


def published_results(cur: Cursor, mapper: Mapper[UUID],
                      year: int) -> tuple[list[PoolResult], list[PoolResult] | None]:
    """A cycle's results exactly as published (and the previous cycle's), from the streams."""
    at = published_position(cur, year)
    if at is None:
        msg = f"cycle {year} is not published"
        raise Conflict(msg, rule="evidence.published")
    before = published_position(cur, year - 1)
    previous = None
    if before is not None:
        previous = pools_as_of(cur, mapper, year - 1, before - 1, {})
    return pools_as_of(cur, mapper, year, at - 1, ranks_of(previous or [])), previous


def _proofs(cur: Cursor, positions: list[int], size: int) -> dict[int, list[bytes]]:
    ranges = {p: merkle.inclusion_ranges(p, size) for p in positions}
    needed = merkle.perfect_nodes_for([r for rs in ranges.values() for r in rs])
    nodes = dict(node_reader(cur)(needed))
    return {p: [merkle.range_hash(a, b, nodes) for a, b in rs] for p, rs in ranges.items()}


def key_handovers(cur: Cursor, origin: str, size: int) -> list[KeyHandover]:
    """Each rotation of the ledger key within the tree of ``size`` leaves, with the first
    checkpoint after it (the handover, signed by both keys: no other is signed in between)."""
    out = []
    previous = ZERO_HASH
    for position, version, topic, state, leaf in stream_rows(cur, LedgerKeys.id_for(origin), size):
        cur.execute("SELECT size, note FROM kaoping_checkpoints WHERE size > %s ORDER BY size "
                    "LIMIT 1", (int(position),))
        row = cur.fetchone()
        if str(topic) == LedgerKeys.Rotated.TOPIC and row is not None and int(row[0]) <= size:
            at, stored = int(row[0]), bytes(state)
            out.append(KeyHandover(
                checkpoint=bytes(row[1]).decode(), previous_leaf=previous.hex(),
                event=BundleEvent(
                    position=int(position), stream_id=str(LedgerKeys.id_for(origin)),
                    version=int(version), topic=str(topic), payload=_b64(stored),
                    payload_hash=hashlib.sha256(stored).hexdigest(),
                    leaf_hash=bytes(leaf).hex(),
                    proof=[h.hex() for h in _proofs(cur, [int(position)], at)[int(position)]]),
                consistency=[h.hex() for h in merkle.consistency_proof(at, size,
                                                                       node_reader(cur))]))
        previous = bytes(leaf)
    return out


def build_bundle(services: Services, year: int, subject: str,
                 since: int | None = None, *, ballots: bool = False) -> Bundle:
    cycle = services.evaluation.cycle(year)
    if cycle.phase != Phase.PUBLISHED:
        msg = f"cycle {year} is not published; bundles are of published results"
        raise Conflict(msg, rule="evidence.published")
    entry = cycle.entry(subject)
    cp = services.signer.sign(services.db, services.clock.now())
    opened = Checkpoint.parse_body(cp.note.split(b"\n\n")[0] + b"\n")
    mapper = services.store.mapper
    streams = [Cycle.id_for(year)] + [SubjectFile.id_for(year, e.subject)
                                      for e in cycle.pool(entry.group, entry.kind)]
    with services.db.read() as cur:
        if published_position(cur, year - 1) is not None:
            streams.insert(0, Cycle.id_for(year - 1))
        rows = [(sid, row) for sid in streams for row in stream_rows(cur, sid, cp.size)]
    sessions = _session_streams(services, rows, cp.size, ballots=ballots)
    with services.db.read() as cur:
        rows += [(sid, row) for sid, below in sessions for row in stream_rows(cur, sid, below)]
        proofs = _proofs(cur, [int(r[0]) for _, r in rows], cp.size)
        results, previous = published_results(cur, mapper, year)
        handovers = key_handovers(cur, opened.origin, cp.size)
        if since is None and cycle.announcement is not None:
            note = str(cycle.announcement["checkpoint"]).encode()
            since = Checkpoint.parse_body(note.split(b"\n\n")[0] + b"\n").size
        consistency = None
        if since is not None and 1 <= since <= cp.size:
            consistency = Consistency(from_size=since, proof=[
                h.hex() for h in merkle.consistency_proof(since, cp.size, node_reader(cur))])
    events = []
    for sid, (position, version, topic, state, leaf) in rows:
        stored = bytes(state)
        restricted = str(topic) in RESTRICTED_TOPICS
        events.append(BundleEvent(
            position=int(position), stream_id=str(as_uuid(sid)), version=int(version),
            topic=str(topic), payload=None if restricted else _b64(stored),
            payload_hash=hashlib.sha256(stored).hexdigest(), leaf_hash=bytes(leaf).hex(),
            proof=[h.hex() for h in proofs[int(position)]]))
    return Bundle(format=FORMAT, origin=opened.origin, checkpoint=cp.note.decode(),
                  consistency=consistency, year=year, subject=subject, group=entry.group,
                  kind=entry.kind, score_version=results[0].version if results else "",
                  events=events, results=results, previous_results=previous,
                  handovers=handovers, ballots=ballots)


def _session_streams(services: Services, rows: list[tuple[UUID, tuple[Any, ...]]],
                     size: int, *, ballots: bool) -> list[tuple[UUID, int]]:
    """The ballot sessions whose close recorded a score -- or no result -- in one of these
    files' rows: each session's stream (its definition, credentials issued, the close with its
    board and tally, and a void) and, with ``ballots``, every ballot on its board as it stood
    at the cut -- as (stream, read below this position)."""
    mapper = services.store.mapper
    codes: set[str] = set()
    for sid, (_, version, topic, state, _) in rows:
        if str(topic) in (SubjectFile.EvaluationRecorded.TOPIC,
                          SubjectFile.EvaluationWithheld.TOPIC):
            ev: Any = mapper.to_domain_event(StoredEvent(as_uuid(sid), int(version), str(topic),
                                                         bytes(state)))
            if getattr(ev, "closed_version", None) is not None or str(
                    topic) == SubjectFile.EvaluationWithheld.TOPIC:
                codes.add(ev.session)
    out: list[tuple[UUID, int]] = []
    for code in sorted(codes):
        session = services.sessions.session(code)
        out.append((session.id, size))
        if not ballots or session.cut_position is None:
            continue
        cut = session.cut_position
        out += [(as_uuid(leaf.stream_id), leaf.position + 1)
                for _, leaf in services.sessions.ballots(session, up_to=cut)
                if leaf.position <= cut]  # on the board; late ballots were not counted
    return out


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def encode_bundle(bundle: Bundle) -> bytes:
    return msgspec.json.encode(bundle, order="sorted")
