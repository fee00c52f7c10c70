"""Evidence bundles: everything an investigator needs to check one published result offline.

A bundle holds, for one subject's comparison pool: a signed checkpoint; every event of the
pool's evidence streams (the cycle, each subject's file, the ballot sessions their scores came
from) and of the results notices (this cycle's: the results as published and every correction;
the previous cycle's: the ranks 位次进退 was measured against), each with its envelope fields
and an RFC 9162 inclusion proof — payloads included where the computation needs them, only
their hash for restricted material (interview notes); the results in force at the checkpoint;
and, optionally, a consistency proof from an earlier checkpoint the investigator already holds
(by default the one printed in the year-end announcement). ``service/verify.py`` checks it.

In the second notice format (domain/publication.py) the notices hold each pool's digest and a
bundle carries only its own pool's published results (that pool's stream, and ``results``
holding that pool alone), and of the previous cycle only the pools its subjects were ranked
in: the rest of the city's results stay out of it.

A cycle published before results notices were recorded (``Cycle.Published`` v1) has no notice:
its results (and, for the next cycle, the previous cycle's) travel as ``results`` and
``previous_results``, checked against the publication's fingerprint.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import StoredEvent

from domain.cycle import Cycle, Phase
from domain.errors import Conflict, NotFound
from domain.ledger_keys import LedgerKeys
from domain.publication import ResultsNotice, ResultsPool
from domain.scheme import SubjectKind
from domain.scoring import PoolResult
from domain.subject_file import SubjectFile
from service.db import as_uuid
from service.ledger import merkle
from service.ledger.checkpoint import Checkpoint
from service.ledger.envelope import ZERO_HASH
from service.ledger.signer import StoredCheckpoint, latest_checkpoint
from service.ledger.tree import node_reader
from service.published import published_as_of
from service.streams import stream_rows, stream_tip

if TYPE_CHECKING:
    from eventsourcing.persistence import Mapper

    from service.db import Cursor
    from service.runtime import Services

FORMAT = "kaoping-evidence/3"
# What the verifier reads: /2 bundles (made before the second notice format) hold every pool.
FORMATS = frozenset({"kaoping-evidence/2", FORMAT})
RESTRICTED_TOPICS = frozenset({SubjectFile.InspectionNoted.TOPIC,
                               SubjectFile.FindingRecorded.TOPIC})


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
    # The results in force at the checkpoint: the bundle's own pool (second notice format),
    # or every pool (the first format, whose notice events hold them all anyway).
    results: list[PoolResult]
    results_version: int  # 1: as published; one more per correction (更正)
    # The previous cycle's results, only when they were published without a results notice
    # (v1): its ranks cannot be read from the log, so they travel here, checked against the
    # fingerprint its publication recorded.
    previous_results: list[PoolResult] | None
    handovers: list[KeyHandover] = []  # every ledger key rotation up to the checkpoint
    # Whether the ballots on the boards of the pool's ballot sessions are included (for a
    # recount). They link each voter's tracker to their answers, so only supervisors get
    # them (docs/evidence.md); without them the verifier checks the recorded scores against
    # the tally the session's close recorded.
    ballots: bool = False


def legacy_results(cur: Cursor, mapper: Mapper[UUID], year: int,
                   size: int) -> list[PoolResult] | None:
    """A cycle's version-1 results when the log holds no results notice for it (below
    ``size``): they travel in the bundle, checked against the publication's fingerprint."""
    if stream_tip(cur, ResultsNotice.id_for(year), size - 1) is not None:
        return None
    published = published_as_of(cur, mapper, year, size - 1)
    return None if published is None else published.results()


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


def bundle_checkpoint(services: Services) -> StoredCheckpoint:
    """The checkpoint the bundle proves against: signed now to the head on the primary; on a
    read-only replica (KAOPING_READ_ONLY), which can sign nothing, the newest one replicated
    from the primary (the bundle then covers the log up to that size)."""
    if not services.settings.read_only:
        return services.signer.sign(services.db, services.clock.now())
    with services.db.read() as cur:
        latest = latest_checkpoint(cur)
    if latest is None:
        msg = "this replica holds no signed checkpoint yet; ask the primary"
        raise Conflict(msg, rule="replica.no-checkpoint")
    return latest


def build_bundle(services: Services, year: int, subject: str,
                 since: int | None = None, *, ballots: bool = False) -> Bundle:
    cycle = services.evaluation.cycle(year)
    if cycle.phase != Phase.PUBLISHED:
        msg = f"cycle {year} is not published; bundles are of published results"
        raise Conflict(msg, rule="evidence.published")
    entry = cycle.entry(subject)
    cp = bundle_checkpoint(services)
    opened = Checkpoint.parse_body(cp.note.split(b"\n\n")[0] + b"\n")
    mapper = services.store.mapper
    # The previous cycle's stream (its publication) and results notice: 位次进退 was measured
    # against one of its versions, which the verifier must see published before.
    pool = cycle.pool(entry.group, entry.kind)
    streams = [Cycle.id_for(year - 1), ResultsNotice.id_for(year - 1), Cycle.id_for(year),
               ResultsNotice.id_for(year),
               ResultsPool.id_for(year, entry.group, entry.kind.value),
               *previous_pools(services, year - 1, [e.subject for e in pool]),
               *[SubjectFile.id_for(year, e.subject) for e in pool]]
    with services.db.read() as cur:
        previous = legacy_results(cur, mapper, year - 1, cp.size)
        rows = [(sid, row) for sid in streams for row in stream_rows(cur, sid, cp.size)]
    sessions = _session_streams(services, rows, cp.size, ballots=ballots)
    with services.db.read() as cur:
        rows += [(sid, row) for sid, below in sessions for row in stream_rows(cur, sid, below)]
        proofs = _proofs(cur, [int(r[0]) for _, r in rows], cp.size)
        published = published_as_of(cur, mapper, year, cp.size - 1)
        if published is None:  # pragma: no cover -- the phase was checked above
            msg = f"cycle {year} is not published"
            raise Conflict(msg, rule="evidence.published")
        handovers = key_handovers(cur, opened.origin, cp.size)
        if since is None and cycle.announcement is not None:
            note = str(cycle.announcement["checkpoint"]).encode()
            since = Checkpoint.parse_body(note.split(b"\n\n")[0] + b"\n").size
        consistency = None
        if since is not None and 1 <= since <= cp.size:
            consistency = Consistency(from_size=since, proof=[
                h.hex() for h in merkle.consistency_proof(since, cp.size, node_reader(cur))])
    by_digest = any(str(r[2]) == ResultsNotice.IssuedByDigest.TOPIC for sid, r in rows
                    if sid == ResultsNotice.id_for(year))
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
                  kind=entry.kind, score_version=published.score_version,
                  events=events, results=[p for p in published.results() if not by_digest or (
                      p.group, p.kind) == (entry.group, entry.kind)],
                  results_version=published.version, previous_results=previous,
                  handovers=handovers, ballots=ballots)


def previous_pools(services: Services, year: int, subjects: list[str]) -> list[UUID]:
    """The streams of ``year``'s published pools (second format) that ranked any of
    ``subjects``: what the next cycle's rank change (位次进退) of their pool was measured on.
    Found from ``year``'s roster; a pool stream that was never written is simply not read."""
    try:
        cycle = services.evaluation.cycle(year)
    except NotFound:
        return []
    wanted = set(subjects)
    return sorted({ResultsPool.id_for(year, e.group, e.kind.value) for e in cycle.roster
                   if e.subject in wanted}, key=str)


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
