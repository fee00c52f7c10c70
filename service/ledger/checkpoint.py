"""Signed tree heads: C2SP ``tlog-checkpoint`` bodies in C2SP ``signed-note`` envelopes, Ed25519.

Specifications followed (https://c2sp.org):

* ``signed-note`` (c2sp.org/signed-note): a note is a UTF-8 text ending in a newline, a blank
  line, then one or more signature lines ``— <key name> <base64(key ID || signature)>``. The
  Ed25519 key ID is ``SHA-256(key name || 0x0A || 0x01 || public key)[:4]``; verifier keys are
  written ``<name>+<hex key ID>+<base64(0x01 || public key)>``.
* ``tlog-checkpoint`` (c2sp.org/tlog-checkpoint): the note text is ``<origin>\\n<tree size>\\n
  <base64 root hash>\\n`` followed by optional, opaque, non-empty extension lines.

The reference implementation is Go's ``golang.org/x/mod/sumdb/note`` (note.go); where the spec
leaves a choice (signature count limit, duplicate handling) we say below what we chose and why.
No Python library implements C2SP signed notes, so the note format is written here by hand;
only the Ed25519 arithmetic comes from ``cryptography``. The module does no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "key_id",
    "open_checkpoint",
    "open_note",
    "parse_verifier_key",
    "sign_checkpoint",
    "sign_note",
    "verifier_key",
]

# signed-note §Signature types: 0x01 is Ed25519.
ALG_ED25519 = 0x01
HASH_SIZE = 32
# Tree sizes are RFC 6962 / RFC 9162 uint64 values; bounding them also bounds how long a size
# line can be, so a hostile note cannot make int() chew on thousands of digits.
MAX_TREE_SIZE = 2**64 - 1
# The spec requires accepting at least 16 signatures and recommends a limit; Go's note.Open
# rejects more than 100, and we match it so notes Go accepts are accepted here.
MAX_SIGNATURES = 100

_SIG_PREFIX = "— "  # U+2014 EM DASH, U+0020 SPACE
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
_HEX_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")


class CheckpointError(ValueError):
    """A note, checkpoint or verifier key is malformed, or no trusted signature verifies."""


# --- shared validation -------------------------------------------------------------------------


def _control_char(s: str) -> str | None:
    """The first ASCII control character other than newline, if any (forbidden in notes)."""
    for c in s:
        if c < " " and c != "\n":
            return c
    return None


def _check_key_name(name: str) -> None:
    # signed-note: names are non-empty, with no Unicode spaces and no '+'. str.isspace() is
    # Go's unicode.IsSpace plus U+001C..U+001F, which are control characters and so excluded
    # from notes anyway.
    if not name:
        raise CheckpointError("key name is empty")
    if "+" in name or any(c.isspace() for c in name):
        raise CheckpointError(f"key name {name!r} contains a space or '+'")
    if _control_char(name) is not None:
        raise CheckpointError(f"key name {name!r} contains a control character")
    try:
        name.encode()
    except UnicodeEncodeError:
        raise CheckpointError(f"key name {name!r} is not valid Unicode") from None


def _check_text(text: bytes) -> str:
    """Decode note text (or a whole note), enforcing signed-note's character rules."""
    try:
        decoded = text.decode("utf-8")  # strict: rejects invalid UTF-8 and encoded surrogates
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"note is not valid UTF-8 (byte {exc.start})") from None
    bad = _control_char(decoded)
    if bad is not None:
        raise CheckpointError(f"note contains control character U+{ord(bad):04X}")
    return decoded


def _b64decode(data: str) -> bytes:
    # validate=True: characters outside the standard alphabet (including whitespace and the
    # URL-safe '-' '_') are errors rather than silently skipped.
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII str
        raise CheckpointError(f"invalid base64 {data!r}") from None


# --- keys --------------------------------------------------------------------------------------


def key_id(name: str, public_key_bytes: bytes) -> bytes:
    """The 4-byte Ed25519 key ID: SHA-256(name || "\\n" || 0x01 || public key)[:4]."""
    _check_key_name(name)
    if len(public_key_bytes) != 32:
        raise CheckpointError(f"Ed25519 public key must be 32 bytes, got {len(public_key_bytes)}")
    return _key_hash(name, bytes([ALG_ED25519]) + public_key_bytes)


def _key_hash(name: str, typed_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + typed_key).digest()[:4]


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """The verifier key string ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
    raw = public_key.public_bytes_raw()
    kid = key_id(name, raw)
    encoded = base64.b64encode(bytes([ALG_ED25519]) + raw).decode("ascii")
    return f"{name}+{kid.hex()}+{encoded}"


def parse_verifier_key(vkey: str) -> tuple[str, bytes, Ed25519PublicKey]:
    """Parse a verifier key into (name, 4-byte key ID, public key), checking the key ID."""
    # Names cannot contain '+', but base64 can: split at the first two only, as Go does.
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise CheckpointError(f"malformed verifier key {vkey!r}: want <name>+<id>+<key>")
    name, hex_id, key64 = parts
    try:
        _check_key_name(name)
    except CheckpointError as exc:
        raise CheckpointError(f"malformed verifier key {vkey!r}: {exc}") from None
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise CheckpointError(f"malformed verifier key {vkey!r}: key ID must be 8 hex digits")
    typed_key = _b64decode(key64)
    if not typed_key:
        raise CheckpointError(f"malformed verifier key {vkey!r}: empty key")
    # Go checks the ID over the typed key before looking at the algorithm; so do we, so a
    # mistyped key reports the mismatch rather than a confusing algorithm error.
    if _key_hash(name, typed_key) != bytes.fromhex(hex_id):
        raise CheckpointError(f"verifier key {vkey!r}: key ID does not match name and key")
    if typed_key[0] != ALG_ED25519:
        raise CheckpointError(
            f"verifier key {vkey!r}: unsupported signature type 0x{typed_key[0]:02x}")
    if len(typed_key) != 1 + 32:
        raise CheckpointError(
            f"verifier key {vkey!r}: Ed25519 key must be 32 bytes, got {len(typed_key) - 1}")
    return name, bytes.fromhex(hex_id), Ed25519PublicKey.from_public_bytes(typed_key[1:])


# --- notes -------------------------------------------------------------------------------------


def sign_note(text: bytes, name: str, private_key: Ed25519PrivateKey,
              *cosigners: Ed25519PrivateKey) -> bytes:
    """Sign ``text`` and return the whole signed note: text, blank line, one signature line per
    key, in the order given (a key handover is signed by the retired key and its successor)."""
    _check_text(text)
    if not text.endswith(b"\n"):
        raise CheckpointError("note text must end with a newline")
    lines = []
    for key in (private_key, *cosigners):
        kid = key_id(name, key.public_key().public_bytes_raw())
        signature = key.sign(text)
        lines.append(f"{_SIG_PREFIX}{name} {base64.b64encode(kid + signature).decode('ascii')}\n")
    return text + b"\n" + "".join(lines).encode()


def _trusted_keys(vkeys: Sequence[str]) -> dict[tuple[str, bytes], Ed25519PublicKey]:
    if isinstance(vkeys, str):
        # A bare string is a Sequence[str] of characters: almost certainly a missing [ ].
        raise TypeError("vkeys must be a sequence of verifier key strings, not one string")
    known: dict[tuple[str, bytes], Ed25519PublicKey] = {}
    for vkey in vkeys:
        name, kid, key = parse_verifier_key(vkey)
        previous = known.get((name, kid))
        if previous is not None and previous.public_bytes_raw() != key.public_bytes_raw():
            # Two keys share name and ID: which one a signature line means is undecidable
            # (Go reports "ambiguous key"). Identical duplicates are harmless and folded.
            raise CheckpointError(f"ambiguous verifier keys for {name}+{kid.hex()}")
        known[(name, kid)] = key
    return known


def open_note(note: bytes, vkeys: Sequence[str]) -> bytes:
    """Verify a signed note against trusted verifier keys and return its text.

    Signatures whose (name, key ID) match no trusted key are ignored (signed-note §Signatures:
    this is what lets witnesses cosign and logs rotate keys), but they must be well formed.
    Every signature from a trusted key must verify, and at least one must be present.
    """
    known = _trusted_keys(vkeys)
    decoded = _check_text(note)

    # The text is separated from the signatures by the *last* blank line; the text keeps its
    # final newline.
    split = decoded.rfind("\n\n")
    if split < 0:
        raise CheckpointError("malformed note: no blank line before the signatures")
    text, sig_block = decoded[:split + 1], decoded[split + 2:]
    if not sig_block or not sig_block.endswith("\n"):
        raise CheckpointError("malformed note: signature block must end with a newline")

    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError(f"malformed note: more than {MAX_SIGNATURES} signatures")

    text_bytes = text.encode()
    verified = 0
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointError(f"malformed note: not a signature line: {line!r}")
        name, _, sig64 = line[len(_SIG_PREFIX):].partition(" ")
        try:
            _check_key_name(name)
        except CheckpointError as exc:
            raise CheckpointError(f"malformed note: signature line {line!r}: {exc}") from None
        blob = _b64decode(sig64)
        if len(blob) < 5:  # a key ID and at least one signature byte, as in Go
            raise CheckpointError(f"malformed note: signature line {line!r} is too short")
        key = known.get((name, blob[:4]))
        if key is None:
            continue  # unknown key (even if it shares a name or an ID with a known one)
        try:
            # A signature of the wrong length is simply invalid to cryptography's verify().
            key.verify(blob[4:], text_bytes)
        except InvalidSignature:
            # signed-note: a known key's failing signature SHOULD reject the whole note.
            raise CheckpointError(
                f"invalid signature for key {name}+{blob[:4].hex()}") from None
        verified += 1

    if verified == 0:
        raise CheckpointError("note has no signature from a trusted key")
    return text_bytes


# --- checkpoints -------------------------------------------------------------------------------


def _check_line(what: str, line: str) -> None:
    if not line:
        raise CheckpointError(f"checkpoint {what} is empty")
    if "\n" in line:
        raise CheckpointError(f"checkpoint {what} {line!r} contains a newline")
    bad = _control_char(line)
    if bad is not None:
        raise CheckpointError(
            f"checkpoint {what} {line!r} contains control character U+{ord(bad):04X}")
    try:
        line.encode()
    except UnicodeEncodeError:
        raise CheckpointError(f"checkpoint {what} {line!r} is not valid Unicode") from None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's tree head at ``size`` leaves (tlog-checkpoint §Note text).

    Construction validates every field, so ``body()`` always yields text that ``parse_body``
    accepts and that reproduces this value exactly.
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # The spec only requires a non-empty origin; it recommends (but forbids clients to
        # assume) a schema-less URL without spaces or '+', so those are not enforced.
        _check_line("origin", self.origin)
        if (isinstance(self.size, bool) or not isinstance(self.size, int)
                or not 0 <= self.size <= MAX_TREE_SIZE):
            raise CheckpointError(f"tree size {self.size!r} is not an integer in [0, 2**64)")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise CheckpointError(f"root hash must be {HASH_SIZE} bytes")
        for ext in self.extensions:
            _check_line("extension line", ext)

    def body(self) -> bytes:
        """The note text: origin, decimal size, base64 root, extension lines, each + newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii"),
                 *self.extensions]
        return "".join(line + "\n" for line in lines).encode()

    @classmethod
    def parse_body(cls, text: bytes) -> Checkpoint:
        """Parse checkpoint note text; the inverse of ``body()``."""
        decoded = _check_text(text)
        if not decoded.endswith("\n"):
            raise CheckpointError("checkpoint text must end with a newline")
        lines = decoded[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError(f"checkpoint has {len(lines)} lines, needs at least 3")
        origin, size_line, root_line, *extensions = lines
        # ASCII decimal, no sign, no leading zeros (except "0" itself), no spaces or '_'; the
        # digit cap keeps int() cheap. Range, empty origin and empty extension lines are left
        # to the constructor's validation below, which applies to every Checkpoint.
        if not _DECIMAL.fullmatch(size_line):
            raise CheckpointError(f"malformed tree size {size_line!r}")
        root = _b64decode(root_line)
        if len(root) != HASH_SIZE:
            raise CheckpointError(f"root hash is {len(root)} bytes, want {HASH_SIZE}")
        # Only the canonical encoding is accepted, so parse_body(t).body() == t always holds and
        # a checkpoint has exactly one signed form.
        if base64.b64encode(root).decode("ascii") != root_line:
            raise CheckpointError(f"root hash {root_line!r} is not canonical base64")
        return cls(origin, int(size_line), root, tuple(extensions))


def sign_checkpoint(cp: Checkpoint, name: str, private_key: Ed25519PrivateKey,
                    *cosigners: Ed25519PrivateKey) -> bytes:
    """The checkpoint as a signed note, signed by ``name``'s key (and any co-signing keys)."""
    return sign_note(cp.body(), name, private_key, *cosigners)


def open_checkpoint(note: bytes, vkeys: Sequence[str], *, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint with any of ``vkeys`` and parse it.

    With ``origin``, also require the checkpoint's origin line to equal it: a valid signature
    by a trusted key on another log's checkpoint must not be mistaken for this log's.
    """
    cp = Checkpoint.parse_body(open_note(note, vkeys))
    if origin is not None and cp.origin != origin:
        raise CheckpointError(f"checkpoint origin {cp.origin!r} is not the expected {origin!r}")
    return cp


def open_checkpoint_within(note: bytes, vkeys: Sequence[str], retired: Mapping[str, int], *,
                           origin: str | None = None) -> Checkpoint:
    """``open_checkpoint`` with retired keys that sign only up to their handover.

    ``vkeys`` are trusted at any size; each key of ``retired`` (verifier key → the size of the
    handover checkpoint it co-signed with its successor) only for checkpoints of at most that
    size. A retired key is one whose holder may no longer be the log: once the successor took
    over, a tree beyond the handover signed by the retired key alone is a forgery (a leaked or
    kept copy of the retired private key), not this log. A key in both is bounded.
    """
    free = [k for k in vkeys if k not in retired]
    # Every trusted signature present must verify (any bad one rejects the note) ...
    cp = open_checkpoint(note, [*free, *retired], origin=origin)
    # ... then one by a key trusted at this size must be among them.
    try:
        return open_checkpoint(note, free, origin=origin)
    except CheckpointError:
        pass
    signed = {k: bound for k, bound in retired.items() if _signed_by(note, k, origin)}
    if any(cp.size <= bound for bound in signed.values()):
        return cp
    raise CheckpointError(
        f"the checkpoint of size {cp.size} is signed only by retired key(s) "
        + ", ".join(f"{k.split('+', 2)[1]} (handover at size {b})" for k, b in signed.items())
        + ": a retired key signs no tree past its handover")


def _signed_by(note: bytes, vkey: str, origin: str | None) -> bool:
    try:
        open_checkpoint(note, [vkey], origin=origin)
    except CheckpointError:
        return False
    return True
