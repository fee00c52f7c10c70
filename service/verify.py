"""``kaoping verify BUNDLE --key KEY [--trusted CHECKPOINT]``: check an evidence bundle offline.

No server, database or network: only the bundle, the published verifier key and (optionally)
a checkpoint the investigator already holds. Checks, in order, failing with a message that
names what failed:

1. the checkpoint's signature, by the given key — or by a key that the given key handed over to
   or received from (each ledger key rotation in the bundle: a checkpoint signed by both keys
   whose tree contains the rotation event naming them, consistent with the bundle's); a
   retired key signs no checkpoint larger than its handover;
2. with ``--trusted``: the bundle's tree against the checkpoint already held: the same root
   when the sizes are equal, else the consistency proof from that size (carried in the bundle,
   or given with ``--consistency FILE`` as the log's endpoint serves it); a log rewritten and
   re-signed since then fails here, and the output names the trusted size it was checked
   against;
3. every event: its payload hash, its leaf hash rebuilt from the envelope fields and the
   previous leaf of its stream, and its inclusion proof;
4. every stream is a hash chain from version 1 with no gap;
5. completeness: every evidence head the publication (and each correction of the pool)
   recorded is in the bundle, and every subject of the pool has its stream;
6. the results: every version in the results notice (the publication and each correction,
   更正) matches the fingerprint it records, the first is the one the publication event
   recorded, and the claimed results are the last; the previous cycle's version each was
   measured against (位次进退) is the one in force when it was fixed;
7. ballots: for every score a pool file recorded by closing a ballot session, the session's
   stream up to its close, every ballot on the session's board (and none that is not), a
   recount with the tally function equal to the tally the close recorded, and the recorded
   score equal to the recount's; every "no result" a file records (quorum failed, fewer than
   k valid ballots) is what the close's tally says; a score from one close is replaced by
   another's only after the first session's void withdrew it; results entered by hand from a
   count held elsewhere are reported as such and never replace a ballot-derived score;
8. the pool's results recomputed with the score function (the version the cycle was
   published with) from the events at each version's heads equal what that version
   published.

Also runnable as ``python -m service.verify``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import msgspec
import msgspec.structs
from eventsourcing.application import project_aggregate
from eventsourcing.persistence import StoredEvent

from domain.ballots import (
    TALLY_VERSION,
    Ballot,
    CountedBallot,
    EvaluationSession,
    SessionKind,
    SessionResult,
    SessionState,
    ballot_id,
    tally,
)
from domain.cycle import Cycle, StreamHead
from domain.ledger_keys import LedgerKeys
from domain.publication import (
    PoolKey,
    ResultsNotice,
    ResultsPool,
    digests_fingerprint,
    pool_digest,
    pool_key,
    results_fingerprint_v1,
)
from domain.scoring import SCORE_VERSIONS, PoolResult
from domain.subject_file import SubjectFile, pool_result
from service.evidence import FORMATS, Bundle, BundleEvent, KeyHandover
from service.ledger import merkle
from service.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    open_checkpoint,
    open_checkpoint_within,
)
from service.ledger.envelope import ZERO_HASH, Envelope
from service.mapper import MsgspecMapper, NoTranscoder


class VerifyError(Exception):
    """The bundle fails; the message says what, naming the event or stream."""


def _fail(message: str) -> VerifyError:
    return VerifyError(message)


def _handover(bundle: Bundle, h: KeyHandover) -> tuple[Checkpoint, str, str]:
    """The handover's checkpoint (signed by both keys it names) and (retired, successor)."""
    ev = h.event
    if ev.topic != LedgerKeys.Rotated.TOPIC or ev.stream_id != str(
            LedgerKeys.id_for(bundle.origin)) or ev.payload is None:
        raise _fail(f"key handover at position {ev.position}: not this log's key rotation")
    stored = base64.b64decode(ev.payload)
    rotated: LedgerKeys.Rotated = MsgspecMapper(transcoder=NoTranscoder()).to_domain_event(
        StoredEvent(UUID(ev.stream_id), ev.version, ev.topic, stored))
    note = h.checkpoint.encode()
    try:
        cp = open_checkpoint(note, [rotated.retired_key], origin=bundle.origin)
        if open_checkpoint(note, [rotated.successor_key], origin=bundle.origin) != cp:
            raise CheckpointError("the two signatures are over different checkpoints")
    except CheckpointError as exc:
        raise _fail(f"key handover at position {ev.position}: {exc}") from None
    leaf = Envelope(ev.position, UUID(ev.stream_id), ev.version, ev.topic,
                    hashlib.sha256(stored).digest(), bytes.fromhex(h.previous_leaf)).leaf_hash()
    if not merkle.verify_inclusion(ev.position, cp.size, leaf,
                                   [bytes.fromhex(p) for p in ev.proof], cp.root):
        raise _fail(f"key handover at position {ev.position}: the rotation event is not in "
                    "the tree both keys signed")
    return cp, rotated.retired_key, rotated.successor_key


Linked = list[tuple[Checkpoint, KeyHandover]]


def _keys_with_handovers(bundle: Bundle,
                         vkeys: Sequence[str]) -> tuple[list[str], dict[str, int], Linked]:
    """The given keys, plus every key linked to one of them by a chain of handovers; and each
    retired key among them with the size of its handover, the largest tree it may sign."""
    parsed = [(h, *_handover(bundle, h)) for h in bundle.handovers]
    bounds: dict[str, int] = {}
    for h, cp, retired, _ in parsed:
        if bounds.get(retired, cp.size) != cp.size:
            raise _fail(f"key handover at position {h.event.position}: the key "
                        f"{retired.split('+', 2)[1]} was already handed over at size "
                        f"{bounds[retired]}; a retired key cannot hand over again")
        bounds[retired] = cp.size
    keys, used = set(vkeys), Linked()
    pending = parsed
    while True:
        found = [(h, cp, r, s) for h, cp, r, s in pending if r in keys or s in keys]
        if not found:
            return sorted(keys), {k: b for k, b in bounds.items() if k in keys}, used
        for h, cp, retired, successor in found:
            keys |= {retired, successor}
            used.append((cp, h))
            pending = [p for p in pending if p[0] is not h]


class ProofFile(msgspec.Struct, rename={"from_": "from"}):
    """A consistency proof as ``GET /api/v1/ledger/proofs/consistency`` returns it (base64)."""

    from_: int
    to: int
    proof: list[str]


def _consistency_hashes(bundle: Bundle, old: int, new: int,
                        fetched: ProofFile | None) -> tuple[list[bytes], str]:
    """The proof from ``old`` to ``new`` and where it came from: the bundle, or the proof file
    given with ``--consistency``. Neither: fail saying exactly how to get one."""
    if bundle.consistency is not None and bundle.consistency.from_size == old:
        return [bytes.fromhex(h) for h in bundle.consistency.proof], "carried in the bundle"
    if fetched is not None:
        if (fetched.from_, fetched.to) != (old, new):
            raise _fail(f"the --consistency proof is from {fetched.from_} to {fetched.to}, "
                        f"not from the trusted size {old} to the bundle's {new}")
        try:
            return ([base64.b64decode(h, validate=True) for h in fetched.proof],
                    "from the --consistency file")
        except ValueError:
            raise _fail("the --consistency proof is not base64") from None
    carried = (f"it carries one from size {bundle.consistency.from_size}"
               if bundle.consistency else "it carries none")
    raise _fail(f"the bundle has no consistency proof from the trusted size {old} ({carried}); "
                f"get one from the log (GET /api/v1/ledger/proofs/consistency?from={old}&to="
                f"{new}, saved to a file) and pass it with --consistency FILE, or ask for a "
                f"bundle made with `kaoping evidence ... --since {old}`")


def _check_trusted(bundle: Bundle, cp: Checkpoint, old: Checkpoint,
                   fetched: ProofFile | None) -> str:
    """Check the bundle's checkpoint against one the investigator already holds; say what was
    checked. Equal sizes need equal roots (a proof between equal sizes is empty)."""
    if old.size > cp.size:
        raise _fail(f"the bundle's log ({cp.size}) is shorter than the trusted "
                    f"checkpoint's ({old.size})")
    if old.size == cp.size:
        if not merkle.verify_consistency(old.size, cp.size, old.root, cp.root, []):
            raise _fail(f"the bundle's checkpoint and the trusted one are both of size "
                        f"{cp.size} but have different roots: the log was forked")
        return (f"trusted checkpoint: size {old.size}, the same tree as the bundle's "
                f"(root {old.root.hex()[:16]}…)")
    hashes, source = _consistency_hashes(bundle, old.size, cp.size, fetched)
    if not merkle.verify_consistency(old.size, cp.size, old.root, cp.root, hashes):
        raise _fail(f"the log at size {cp.size} is not an extension of the trusted "
                    f"checkpoint at size {old.size}: it was rewritten")
    return (f"trusted checkpoint: size {old.size} (root {old.root.hex()[:16]}…); the bundle's "
            f"log of size {cp.size} extends it (RFC 9162 consistency proof {source})")


def _check_checkpoints(bundle: Bundle, given: Sequence[str], trusted: bytes | None,
                       fetched: ProofFile | None = None) -> tuple[int, bytes, list[str]]:
    vkeys, retired, handovers = _keys_with_handovers(bundle, given)
    try:
        cp = open_checkpoint_within(bundle.checkpoint.encode(), vkeys, retired)
    except CheckpointError as exc:
        raise _fail(f"checkpoint: {exc}") from None
    lines: list[str] = []
    if trusted is not None:
        try:
            old = open_checkpoint_within(trusted, vkeys, retired)
        except CheckpointError as exc:
            raise _fail(f"trusted checkpoint: {exc}") from None
        lines.append(_check_trusted(bundle, cp, old, fetched))
    for handed, h in handovers:
        if not merkle.verify_consistency(handed.size, cp.size, handed.root, cp.root,
                                         [bytes.fromhex(p) for p in h.consistency]):
            raise _fail(f"the key handover at size {handed.size} is not in the log the "
                        f"bundle's checkpoint signs (size {cp.size})")
    return cp.size, cp.root, lines


def _check_events(bundle: Bundle, size: int, root: bytes) -> dict[str, list[BundleEvent]]:
    streams: dict[str, list[BundleEvent]] = {}
    for ev in bundle.events:
        streams.setdefault(ev.stream_id, []).append(ev)
    for sid, events in streams.items():
        events.sort(key=lambda e: e.version)
        previous = ZERO_HASH
        for expected, ev in enumerate(events, start=1):
            if ev.version < expected:  # sorted: the version before it was the same
                raise _fail(f"stream {sid}: version {ev.version} is in the bundle twice")
            if ev.version != expected:
                raise _fail(f"stream {sid}: version {expected} is missing (the chain breaks "
                            f"before version {ev.version})")
            if ev.payload is not None and hashlib.sha256(
                    base64.b64decode(ev.payload)).hexdigest() != ev.payload_hash:
                raise _fail(f"event at position {ev.position} ({ev.topic}): its payload was "
                            "altered")
            leaf = Envelope(ev.position, UUID(sid), ev.version, ev.topic,
                            bytes.fromhex(ev.payload_hash), previous).leaf_hash()
            if leaf.hex() != ev.leaf_hash:
                raise _fail(f"event at position {ev.position} ({ev.topic}): it does not match "
                            "its leaf hash (altered, reordered or out of its stream's chain)")
            if not merkle.verify_inclusion(ev.position, size, leaf,
                                           [bytes.fromhex(h) for h in ev.proof], root):
                raise _fail(f"event at position {ev.position}: not in the signed log")
            previous = leaf
    return streams


def _placeholder(ev: BundleEvent) -> Any:
    """A restricted event (its payload withheld) in its place: it moves no number."""
    fields: dict[str, Any]
    if ev.topic == SubjectFile.InspectionNoted.TOPIC:
        event_class: Any = SubjectFile.InspectionNoted
        fields = {"activity": "", "notes": "(restricted)"}
    elif ev.topic == SubjectFile.FindingRecorded.TOPIC:
        event_class = SubjectFile.FindingRecorded
        fields = {"activity": "", "member": "", "summary": "(restricted)", "strengths": [],
                  "problems": [], "documents": []}
    else:
        raise _fail(f"event at position {ev.position} ({ev.topic}) has no payload")
    return event_class(originator_id=UUID(ev.stream_id), originator_version=ev.version,
                       timestamp=datetime.now(UTC), actor="", **fields)


def _aggregate(events: list[BundleEvent], up_to_version: int | None = None) -> Any:
    mapper = MsgspecMapper(transcoder=NoTranscoder())
    decoded = []
    for ev in events:
        if up_to_version is not None and ev.version > up_to_version:
            break
        if ev.payload is None:
            # Restricted material (interview notes): proven unchanged by its hash; it does not
            # enter the score, so a placeholder keeps the stream's versions in sequence.
            decoded.append(_placeholder(ev))
            continue
        decoded.append(mapper.to_domain_event(StoredEvent(
            UUID(ev.stream_id), ev.version, ev.topic, base64.b64decode(ev.payload))))
    return project_aggregate(None, decoded) if decoded else None


def _published(events: list[BundleEvent]) -> Cycle.Published:
    mapper = MsgspecMapper(transcoder=NoTranscoder())
    for ev in events:
        if ev.topic == Cycle.Published.TOPIC and ev.payload is not None:
            found: Cycle.Published = mapper.to_domain_event(StoredEvent(
                UUID(ev.stream_id), ev.version, ev.topic, base64.b64decode(ev.payload)))
            return found
    raise _fail("the cycle's publication event is not in the bundle")


@dataclass(frozen=True)
class _Version:
    """One published version of a cycle's results, as the bundle shows it."""

    number: int
    position: int  # where the results were fixed (for version 1: the publication)
    pools: dict[PoolKey, PoolResult]
    previous_version: int | Literal["in-force"] | None  # "in-force": a v1 publication's
    changed: frozenset[PoolKey]
    heads: list[StreamHead]
    fingerprint: str
    event: Any  # the notice event (None for a v1 publication without one)
    # The second notice format: every pool's digest in this version; ``pools`` then holds
    # only the pools whose streams the bundle carries, each checked against its digest.
    digests: dict[PoolKey, str] | None = None


def _decode(ev: BundleEvent) -> Any:
    if ev.payload is None:
        raise _fail(f"event at position {ev.position} ({ev.topic}) has no payload")
    return MsgspecMapper(transcoder=NoTranscoder()).to_domain_event(StoredEvent(
        UUID(ev.stream_id), ev.version, ev.topic, base64.b64decode(ev.payload)))


def _publication(streams: dict[str, list[BundleEvent]],
                 year: int) -> tuple[BundleEvent, Cycle.Published] | None:
    for ev in streams.get(str(Cycle.id_for(year)), []):
        if ev.topic == Cycle.Published.TOPIC:
            return ev, _decode(ev)
    return None


def _versions(streams: dict[str, list[BundleEvent]], year: int,
              claimed: list[PoolResult] | None) -> list[_Version] | None:
    """Every version of ``year``'s results in the bundle (None: the cycle is not published
    in it), each checked against the fingerprint it was published with."""
    found = _publication(streams, year)
    if found is None:
        return None
    at, published = found
    notice_sid = str(ResultsNotice.id_for(year))
    if notice_sid not in streams:
        if published.results_notice:
            raise _fail(f"the results notice of {year} is withheld: its publication recorded "
                        "the results there")
        if claimed is None or results_fingerprint_v1(claimed) != published.results_fingerprint:
            raise _fail(f"the results of {year} are not the published ones (their fingerprint "
                        "differs from the publication event's)")
        pools = {pool_key(p): p for p in claimed}
        return [_Version(1, at.position, pools, "in-force", frozenset(pools),
                         list(published.heads), published.results_fingerprint, None)]
    out: list[_Version] = []
    notice: ResultsNotice | None = None
    events = streams[notice_sid]
    second = bool(events) and events[0].topic == ResultsNotice.IssuedByDigest.TOPIC
    for ev in events:
        decoded = _decode(ev)
        if isinstance(decoded, (ResultsNotice.IssuedByDigest, ResultsNotice.CorrectedByDigest)
                      ) != second:
            raise _fail(f"results version {ev.version} of {year} (position {ev.position}) is "
                        "not in the notice's format")
        folded = project_aggregate(None, [decoded]) if notice is None else decoded.mutate(notice)
        if not isinstance(folded, ResultsNotice):
            raise _fail(f"the results notice of {year} holds a foreign event at position "
                        f"{ev.position}")
        notice = folded
        recorded = (digests_fingerprint(decoded.digests) if second
                    else results_fingerprint_v1(notice.results()))
        if recorded != decoded.results_fingerprint:
            raise _fail(f"results version {ev.version} of {year} (position {ev.position}) does "
                        "not match the fingerprint it records")
        issued = isinstance(decoded, (ResultsNotice.Issued, ResultsNotice.IssuedByDigest))
        if issued and (decoded.results_fingerprint != published.results_fingerprint
                       or decoded.score_version != published.score_version):
            raise _fail(f"the results notice of {year} is not the one its publication recorded")
        if second:
            pools = _stated(streams, year, ev.version, notice.digests)
            changed = frozenset(notice.digests) if issued else frozenset(
                (d.group, d.kind) for d in decoded.changed)
        else:
            pools = dict(notice.pools)
            changed = frozenset(notice.pools) if issued else frozenset(
                pool_key(p) for p in decoded.pools)
        out.append(_Version(
            ev.version, at.position if issued else ev.position, pools, decoded.previous_version,
            changed, list(published.heads) if issued else list(decoded.heads),
            decoded.results_fingerprint, decoded,
            dict(notice.digests) if second else None))
    return out


def _stated(streams: dict[str, list[BundleEvent]], year: int, version: int,
            digests: dict[PoolKey, str]) -> dict[PoolKey, PoolResult]:
    """The pools of a second-format results version whose streams the bundle carries, each
    equal to its digest in that version (the others are simply not in the bundle)."""
    out = {}
    for key, digest in digests.items():
        sid = str(ResultsPool.id_for(year, *key))
        if sid not in streams:
            continue
        stream = _aggregate(streams[sid])
        pool = stream.as_of(version) if isinstance(stream, ResultsPool) else None
        if pool is None or pool_digest(pool).digest != digest:
            raise _fail(f"the published results of {key[0]}/{key[1]} in {year}'s results "
                        f"version {version} do not match the digest its notice records "
                        "(altered, or a later statement withheld)")
        out[key] = pool
    return out


def _ranks_for(streams: dict[str, list[BundleEvent]], bundle: Bundle,
               wanted: int | Literal["in-force"] | None, at: int,
               subjects: list[str]) -> dict[str, int]:
    """The previous cycle's ranks a version of the results was computed with: the version
    it names, which must be the one in force when it was fixed (position ``at``). In the
    second format the pools that ranked ``subjects`` last year must be in the bundle."""
    year = bundle.year - 1
    versions = _versions(streams, year, bundle.previous_results) or []
    in_force = [v for v in versions if v.position < at]
    current = in_force[-1] if in_force else None
    if current is not None and current.digests is not None:
        before = _aggregate(streams.get(str(Cycle.id_for(year)), []))
        needed = {(e.group, e.kind.value) for e in before.roster if e.subject in subjects
                  } if isinstance(before, Cycle) else set()
        missing = sorted(needed - set(current.pools))
        if missing:
            raise _fail(f"the published results of {year} that ranked this pool's subjects "
                        f"({', '.join(f'{g}/{k}' for g, k in missing)}) are omitted: their "
                        "rank change (位次进退) cannot be checked")
    if wanted == "in-force":
        return {} if current is None else _ranks(current)
    if current is None and wanted is not None:
        raise _fail(f"the results were measured against version {wanted} of {year}, which the "
                    "bundle does not show as published before them")
    if current is not None and current.number != wanted:
        raise _fail(f"the results were measured against version {wanted} of {year}'s results, "
                    f"but version {current.number} was in force (position {current.position})")
    return {} if current is None else _ranks(current)


def _ranks(version: _Version) -> dict[str, int]:
    return {r.subject: r.rank for p in version.pools.values() for r in p.results}


def _check_head(streams: dict[str, list[BundleEvent]], subject: str, sid: str,
                head: StreamHead, number: int = 1) -> None:
    """The stream is in the bundle up to the head a results version recorded. A head with no
    leaf hash names an event written in the same commit as the correction that records it
    (a review decision): its version is checked, its leaf by its place in the log."""
    what = "the publication" if number == 1 else f"results version {number}"
    if sid not in streams:
        raise _fail(f"the evidence stream of {subject} ({sid}) is omitted")
    have = {e.version: e for e in streams[sid]}
    if head.version not in have:
        raise _fail(f"the evidence stream of {subject} ({sid}) lacks events up to version "
                    f"{head.version}, which {what} recorded (events withheld)")
    if head.leaf_hash and have[head.version].leaf_hash != head.leaf_hash:
        raise _fail(f"the evidence stream of {subject}: version {head.version} is not the one "
                    f"{what} recorded")


def _session_at(streams: dict[str, list[BundleEvent]], code: str, version: int,
                state: SessionState, named_for: str = "score") -> EvaluationSession:
    """Ballot session ``code`` as of ``version`` of its stream, which must be its close (or,
    for ``VOIDED``, its void after a close)."""
    sid = str(EvaluationSession.id_for(code))
    if sid not in streams:
        raise _fail(f"session {code}: its stream is omitted, though a recorded {named_for} "
                    "came from its close")
    session = _aggregate(streams[sid], version)
    if (not isinstance(session, EvaluationSession) or session.version != version
            or session.state != state or session.cut_position is None
            or session.result is None):
        what = "its close" if state == SessionState.CLOSED else "its void after a close"
        raise _fail(f"session {code}: version {version} of its stream is not {what}")
    return session


def _without_late(result: SessionResult) -> SessionResult:
    """Ballots first cast after the cut are counted late, but not on the board and not in the
    bundle: the recount compares everything else."""
    return msgspec.structs.replace(result, classes=[
        msgspec.structs.replace(c, late=0) for c in result.classes])


def _recount(streams: dict[str, list[BundleEvent]], session: EvaluationSession) -> int:
    """Recount the session's tally from the ballots on its board; return how many."""
    code, cut = session.definition.code, session.cut_position
    assert cut is not None and session.result is not None  # noqa: S101 -- _session_at
    if session.result.version != TALLY_VERSION:
        raise _fail(f"session {code}: closed with {session.result.version}; this verifier "
                    f"recounts with {TALLY_VERSION}")
    board, found, ballots = set(session.trackers), set(), []
    for digest, rater_class in session.credentials.items():
        events = streams.get(str(ballot_id(code, digest)))
        if not events:
            continue  # a credential not used (or its ballot late): nothing on the board
        last = events[-1]
        if last.position > cut or last.leaf_hash not in board:
            raise _fail(f"session {code}: ballot stream {events[0].stream_id} is in the bundle "
                        "but not on the board its close recorded")
        ballot = _aggregate(events)
        if (not isinstance(ballot, Ballot) or ballot.session != code
                or ballot.credential_hash != digest or ballot.rater_class != rater_class):
            raise _fail(f"session {code}: ballot stream {events[0].stream_id} does not belong "
                        "to the credential it is filed under")
        ballots.append(CountedBallot(ballot.rater_class, ballot.answers, last.position))
        found.add(last.leaf_hash)
    missing = sorted(board - found)
    if missing:
        raise _fail(f"session {code}: {len(missing)} ballot(s) on the board are missing from "
                    f"the bundle (e.g. tracker {missing[0]})")
    issued = dict(Counter(session.credentials.values()))
    recount = tally(session.definition, issued, ballots, cut)
    if _without_late(recount) != _without_late(session.result):
        raise _fail(f"session {code}: the recount of its {len(ballots)} ballots differs from "
                    "the tally recorded at its close")
    return len(ballots)


_FIELD_OF = {SessionKind.DEMOCRATIC: "democratic", SessionKind.SURVEY: "satisfaction"}
_VOIDED = "session-voided"


class _BallotCheck:
    """Walks the pool's files for what ballot sessions put there: every score recorded from a
    close is that close's tally (recounted from the ballots when the bundle carries them);
    every "no result" is what the close said (quorum failed, fewer than k valid ballots); a
    score from one close is replaced by another's only after a void withdrew it; and no hand
    entry overrides one."""

    def __init__(self, bundle: Bundle, streams: dict[str, list[BundleEvent]]) -> None:
        self.bundle, self.streams = bundle, streams
        self.mapper = MsgspecMapper(transcoder=NoTranscoder())
        self.closes: dict[str, EvaluationSession] = {}  # code -> as of its close
        self.recounted: dict[str, int] = {}
        self.withheld: Counter[str] = Counter()  # session -> subjects it gave no result
        self.voids: dict[str, tuple[int, int]] = {}  # session -> (files withdrawn, position)
        self.in_force: set[str] = set()  # sessions whose scores the published files hold
        self.by_hand = 0

    def file(self, subject: str, sid: str, head: int) -> None:
        from_ballots: dict[str, str] = {}  # field -> the session whose close set it, in force
        for ev in self.streams[sid]:
            if ev.version > head or ev.payload is None or ev.topic not in (
                    SubjectFile.EvaluationRecorded.TOPIC, SubjectFile.EvaluationWithheld.TOPIC):
                continue
            event: Any = self.mapper.to_domain_event(StoredEvent(
                UUID(sid), ev.version, ev.topic, base64.b64decode(ev.payload)))
            if ev.topic == SubjectFile.EvaluationWithheld.TOPIC:
                self._withheld(subject, event, ev.position, from_ballots)
            elif event.closed_version is None:
                self._by_hand(subject, event, ev.position, from_ballots)
            else:
                self._recorded(subject, event, ev.position, from_ballots)
        self.in_force |= set(from_ballots.values())

    def _close(self, code: str, version: int, named_for: str = "score") -> EvaluationSession:
        if code not in self.closes:
            self.closes[code] = _session_at(self.streams, code, version, SessionState.CLOSED,
                                            named_for)
            if self.bundle.ballots:
                self.recounted[code] = _recount(self.streams, self.closes[code])
        if self.closes[code].version != version:
            raise _fail(f"session {code}: files name two different closes of it")
        return self.closes[code]

    def _by_hand(self, subject: str, recorded: Any, position: int,
                 from_ballots: dict[str, str]) -> None:
        fields = {f for f in ("democratic", "satisfaction") if getattr(recorded, f) is not None}
        if str(EvaluationSession.id_for(recorded.session)) in self.streams:
            raise _fail(f"{subject}: a result entered by hand under the name of ballot "
                        f"session {recorded.session}")
        if fields & set(from_ballots):
            raise _fail(f"{subject}: a result entered by hand (position {position}) "
                        f"replaces the {', '.join(sorted(fields & set(from_ballots)))} a "
                        "ballot session's close recorded")
        self.by_hand += 1

    def _recorded(self, subject: str, recorded: Any, position: int,
                  from_ballots: dict[str, str]) -> None:
        fields = {f for f in ("democratic", "satisfaction") if getattr(recorded, f) is not None}
        session = self._close(recorded.session, recorded.closed_version)
        replaced = sorted(fields & set(from_ballots))
        if replaced:
            raise _fail(f"{subject}: the {replaced[0]} score from session {recorded.session}'s "
                        f"close (position {position}) silently replaces the one session "
                        f"{from_ballots[replaced[0]]}'s close recorded, which no void withdrew")
        _check_recorded(subject, recorded, fields, session, self.bundle.year)
        from_ballots.update(dict.fromkeys(fields, recorded.session))

    def _withheld(self, subject: str, withheld: Any, position: int,
                  from_ballots: dict[str, str]) -> None:
        code = withheld.session
        if withheld.reason == _VOIDED:
            voided = _session_at(self.streams, code, withheld.source_version,
                                 SessionState.VOIDED, "withdrawal")
            self._close(code, voided.version - 1)  # a void right after the close it undoes
            count, _ = self.voids.get(code, (0, position))
            self.voids[code] = (count + 1, position)
            for field in [f for f, source in from_ballots.items() if source == code]:
                del from_ballots[field]
            return
        session = self._close(code, withheld.source_version, "no-result")
        assert session.result is not None  # noqa: S101 -- _session_at
        mine = next((t for t in session.result.subjects if t.subject == subject), None)
        reason = None if mine is None or mine.score is not None else (
            mine.withheld_reason or "no-counted-votes")
        if reason != withheld.reason:
            raise _fail(f"{subject}: its file says session {code} gave it no result "
                        f"({withheld.reason}, position {position}); its close's tally gives "
                        f"{'no such subject' if mine is None else mine.score or reason}")
        self.withheld[code] += 1

    def lines(self) -> list[str]:
        lines = []
        for code, session in sorted(self.closes.items()):
            if session.result is not None and session.result.quorum_failed:
                failed = ", ".join(f"{f.rater_class} {f.present}/{f.eligible} (needs "
                                   f"{f.required})" for f in session.result.quorum_failed)
                lines.append(f"ballots: session {code}: quorum failed ({failed}); no result, "
                             f"as {self.withheld[code]} file(s) record")
            elif code in self.recounted:
                lines.append(f"ballots: session {code}: {self.recounted[code]} ballots on its "
                             "board recounted; its tally and the scores recorded from it match")
            else:
                lines.append(f"ballots: session {code}: the scores recorded from it match the "
                             f"tally its close recorded ({len(session.trackers)} ballots on "
                             "its board; not recounted: this bundle carries no ballots)")
            if code in self.voids:
                count, position = self.voids[code]
                lines.append(f"ballots: session {code} was voided (position {position}); its "
                             f"scores were withdrawn from {count} file(s)")
            elif code in self.in_force and self._voided_later(session):
                lines.append(f"WARNING: session {code} was voided after its close, yet scores "
                             "recorded from it are used")
        if self.by_hand:
            lines.append(f"ballots: {self.by_hand} evaluation result(s) entered by hand from "
                         "counts held elsewhere (no ballots in this system to recount)")
        return lines

    def _voided_later(self, session: EvaluationSession) -> bool:
        return any(e.version > session.version and e.topic == EvaluationSession.Voided.TOPIC
                   for e in self.streams.get(str(session.id), []))


def _check_ballots(bundle: Bundle, streams: dict[str, list[BundleEvent]],
                   pool: list[tuple[str, str, int]]) -> list[str]:
    check = _BallotCheck(bundle, streams)
    for subject, sid, head in pool:
        check.file(subject, sid, head)
    return check.lines()


def _check_recorded(subject: str, recorded: Any, fields: set[str], session: EvaluationSession,
                    year: int) -> None:
    """A score recorded from a session's close: the right kind, year and value."""
    definition = session.definition
    if definition.year != year or fields != {_FIELD_OF[definition.kind]}:
        raise _fail(f"{subject}: session {recorded.session} ({definition.kind.value}, "
                    f"{definition.year}) cannot give this file's "
                    f"{', '.join(sorted(fields)) or 'empty result'}")
    assert session.result is not None  # noqa: S101 -- _session_at
    mine = next((t for t in session.result.subjects if t.subject == subject), None)
    score = None if mine is None else mine.score
    value = recorded.democratic if definition.kind == SessionKind.DEMOCRATIC else (
        recorded.satisfaction * 100)
    if score is None or value != score:
        raise _fail(f"{subject}: its file recorded {value} from session "
                    f"{recorded.session}; its close's tally gives {score}")


def _recompute(bundle: Bundle, streams: dict[str, list[BundleEvent]], cycle: Cycle,
               version: _Version, score_version: str) -> int:
    """Recompute the bundle's pool from the evidence heads ``version`` names; it must equal
    the pool as that version published it. Returns the number of subjects."""
    assert cycle.scheme is not None  # noqa: S101 -- checked by the caller
    key = (bundle.group, bundle.kind.value)
    heads = {h.stream_id: h for h in version.heads}
    files = []
    for entry in cycle.pool(bundle.group, bundle.kind):
        sid = str(SubjectFile.id_for(bundle.year, entry.subject))
        if sid not in heads:
            raise _fail(f"results version {version.number} recorded no evidence head for "
                        f"{entry.subject}")
        _check_head(streams, entry.subject, sid, heads[sid], version.number)
        files.append(_aggregate(streams[sid], heads[sid].version))
    previous = _ranks_for(streams, bundle, version.previous_version, version.position,
                          [e.subject for e in cycle.pool(bundle.group, bundle.kind)])
    if version.digests is not None and key not in version.pools:
        raise _fail(f"the published results of the pool {key[0]}/{key[1]} (results version "
                    f"{version.number}) are omitted")
    recomputed = pool_result(cycle.scheme, bundle.group, bundle.kind, files, previous,
                             score_version)
    claimed = version.pools.get(key)
    if claimed is not None and recomputed == claimed:
        return len(files)
    mine = {r.subject: r for r in recomputed.results}
    for r in claimed.results if claimed else []:
        other = mine.get(r.subject)
        if other != r:
            raise _fail(f"{r.subject}: recomputed {other.composite if other else None} / "
                        f"{other.final_grade if other else None}, results version "
                        f"{version.number} claims {r.composite} / {r.final_grade}")
    raise _fail(f"the pool's recomputed results differ from results version {version.number}")


def _check_score_version(bundle: Bundle, published: str) -> None:
    if published not in SCORE_VERSIONS:
        raise _fail(f"published with score function {published}; this verifier computes "
                    f"{', '.join(SCORE_VERSIONS)}")
    if bundle.score_version != published:  # nothing a bundle says goes unchecked
        raise _fail(f"the bundle says score function {bundle.score_version}, but the cycle was "
                    f"published with {published}")


def verify_bundle(data: bytes, vkeys: Sequence[str], trusted: bytes | None = None,
                  consistency: bytes | None = None) -> list[str]:
    """Raise VerifyError naming the first failure; return what was checked. ``consistency``:
    a proof file from the log's consistency endpoint, for a trusted size the bundle has none
    from."""
    try:
        bundle = msgspec.json.decode(data, type=Bundle)
    except msgspec.DecodeError as exc:
        raise _fail(f"not an evidence bundle: {exc}") from None
    if bundle.format not in FORMATS:
        raise _fail(f"unknown bundle format {bundle.format!r}")
    fetched = None
    if consistency is not None:
        try:
            fetched = msgspec.json.decode(consistency, type=ProofFile)
        except msgspec.DecodeError as exc:
            raise _fail(f"the --consistency file is not a consistency proof: {exc}") from None
    size, root, trusted_lines = _check_checkpoints(bundle, vkeys, trusted, fetched)
    streams = _check_events(bundle, size, root)
    cycle_sid = str(Cycle.id_for(bundle.year))
    if cycle_sid not in streams:
        raise _fail(f"the cycle {bundle.year} stream is not in the bundle")
    published = _published(streams[cycle_sid])
    _check_score_version(bundle, published.score_version)
    cycle = _aggregate(streams[cycle_sid], published.originator_version - 1)
    if not isinstance(cycle, Cycle) or cycle.scheme is None:
        raise _fail("the cycle stream does not define a scheme")
    versions = _versions(streams, bundle.year, bundle.results)
    assert versions  # noqa: S101 -- _published found the publication
    key = (bundle.group, bundle.kind.value)
    recomputed, subjects = [], 0
    for version in versions:
        if key in version.changed:
            subjects = _recompute(bundle, streams, cycle, version, published.score_version)
            recomputed.append(version.number)
    last = versions[-1]
    if last.digests is not None:  # the second format: the bundle's own pool only
        claimed_ok = bundle.results_version == last.number and [
            (pool_key(p), pool_digest(p).digest) for p in bundle.results] == [
            (key, last.digests.get(key))]
    else:
        claimed_ok = bundle.results_version == last.number and results_fingerprint_v1(
            bundle.results) == last.fingerprint
    if not claimed_ok:
        raise _fail(f"the claimed results are not the published ones (version {last.number}, "
                    "the last published in the bundle's log)")
    pool_streams = [(e.subject, str(SubjectFile.id_for(bundle.year, e.subject)),
                     max(h.version for v in versions if key in v.changed for h in v.heads
                         if h.stream_id == str(SubjectFile.id_for(bundle.year, e.subject))))
                    for e in cycle.pool(bundle.group, bundle.kind)]
    ballots = _check_ballots(bundle, streams, pool_streams)
    mine = last.pools[key].for_subject(bundle.subject)
    corrected = [v for v in versions if v.number > 1]
    return [
        f"checkpoint: {size} leaves, signed",
        *trusted_lines,
        f"events: {len(bundle.events)} in {len(streams)} streams, each proven in the log",
        f"publication heads: all {subjects} evidence streams of the pool complete",
        *ballots,
        f"pool {bundle.group}/{bundle.kind.value}: {subjects} subjects recomputed with "
        f"{published.score_version} for results version(s) "
        f"{', '.join(str(n) for n in recomputed)}, each equal to what it published",
        *[f"correction (更正) {v.number} at position {v.position}: {v.event.basis} "
          f"{v.event.reference!r} by {v.event.authority}: {v.event.reason}"
          + ("" if key in v.changed else " (not this pool)") for v in corrected],
        f"{bundle.subject}: composite {mine.composite}, rank {mine.rank}, "
        f"grade {mine.final_grade or 'none (' + str(mine.no_grade_reason) + ')'} "
        f"(results version {last.number})",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kaoping verify",
                                     description="verify an evidence bundle offline")
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--key", required=True, action="append",
                        help="the published verifier key (repeatable)")
    parser.add_argument("--trusted", type=Path, help="a checkpoint you already hold")
    parser.add_argument("--consistency", type=Path,
                        help="a consistency proof from the trusted size to the bundle's, as "
                             "GET /api/v1/ledger/proofs/consistency returns it (when the bundle "
                             "carries none from that size)")
    args = parser.parse_args(argv)
    try:
        lines = verify_bundle(args.bundle.read_bytes(), args.key,
                              args.trusted.read_bytes() if args.trusted else None,
                              args.consistency.read_bytes() if args.consistency else None)
    except VerifyError as exc:
        print(f"NOT VERIFIED: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    for line in lines:
        label = ("" if line.startswith("WARNING") else "note  " if "entered by hand" in line
                 else "ok  ")
        print(f"{label}{line}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
