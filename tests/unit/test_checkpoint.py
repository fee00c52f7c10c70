"""C2SP signed notes and tlog checkpoints (service/ledger/checkpoint.py).

Known-answer vectors are copied from Go's golang.org/x/mod/sumdb/note/note_test.go (TestSign,
TestOpen, TestNewVerifier, TestVerifierList) and the C2SP tlog-checkpoint.md example.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from service.ledger import checkpoint
from service.ledger.checkpoint import (
    MAX_SIGNATURES,
    Checkpoint,
    CheckpointError,
    key_id,
    open_checkpoint,
    open_checkpoint_within,
    open_note,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
    verifier_key,
)

# --- vectors from golang.org/x/mod/sumdb/note/note_test.go --------------------------------------

GO_PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (b"If you think cryptography is the answer to your problem,\n"
           b"then you don't know what your problem is.\n")
GO_PETER_SIG = ("— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgK"
                "vqfqdngotpRZb6KE6RyyBwJnAM=\n").encode()
GO_ENOCH_SIG = ("— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01o"
                "OTGwnWLox33WWd1RvMc+QQ=\n").encode()
# TestSign's `want`: the exact note Go's note.Sign produces for GO_TEXT with GO_PETER_SKEY.
GO_SIGNED = GO_TEXT + b"\n" + GO_PETER_SIG

# --- the example in C2SP tlog-checkpoint.md -----------------------------------------------------

SPEC_BODY = (b"example.com/behind-the-sofa\n20852163\n"
             b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")
SPEC_SIGNED = SPEC_BODY + b"\n" + (
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcy"
    "v2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n").encode()

ORIGIN = "kaoping.example/ledger"
ROOT = bytes(range(32))
ROOT_B64 = b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
KEY = Ed25519PrivateKey.generate()
VKEY = verifier_key(ORIGIN, KEY.public_key())
OTHER_KEY = Ed25519PrivateKey.generate()


def go_signer(skey: str) -> tuple[str, bytes, Ed25519PrivateKey]:
    """Go's signer key string PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>."""
    private, key, name, hex_id, key64 = skey.split("+", 4)
    assert (private, key) == ("PRIVATE", "KEY")
    typed = base64.b64decode(key64, validate=True)
    assert typed[0] == 0x01
    assert len(typed) == 33
    return name, bytes.fromhex(hex_id), Ed25519PrivateKey.from_private_bytes(typed[1:])


PETER_NAME, PETER_ID, PETER_KEY = go_signer(GO_PETER_SKEY)


# --- known answers ------------------------------------------------------------------------------


def test_key_id_and_verifier_key_match_go() -> None:
    public = PETER_KEY.public_key()
    assert key_id(PETER_NAME, public.public_bytes_raw()) == bytes.fromhex("c74f20a3") == PETER_ID
    assert verifier_key(PETER_NAME, public) == GO_PETER_VKEY
    name, kid, parsed = parse_verifier_key(GO_PETER_VKEY)
    assert (name, kid) == ("PeterNeumann", bytes.fromhex("c74f20a3"))
    assert parsed.public_bytes_raw() == public.public_bytes_raw()
    name, kid, _ = parse_verifier_key(GO_ENOCH_VKEY)
    assert (name, kid) == ("EnochRoot", bytes.fromhex("af0cfe78"))


def test_sign_note_is_byte_identical_to_go() -> None:
    assert sign_note(GO_TEXT, PETER_NAME, PETER_KEY) == GO_SIGNED


def test_open_note_accepts_go_notes() -> None:
    assert open_note(GO_SIGNED, [GO_PETER_VKEY]) == GO_TEXT
    both = GO_TEXT + b"\n" + GO_PETER_SIG + GO_ENOCH_SIG
    # One known key, one unknown signature (ignored); each alone; both known.
    assert open_note(both, [GO_PETER_VKEY]) == GO_TEXT
    assert open_note(both, [GO_ENOCH_VKEY]) == GO_TEXT
    assert open_note(both, [GO_PETER_VKEY, GO_ENOCH_VKEY]) == GO_TEXT
    # Duplicated identical signatures and verifier keys are harmless (TestOpen, "Duplicated").
    dup = GO_TEXT + b"\n" + GO_PETER_SIG + GO_PETER_SIG + GO_ENOCH_SIG + GO_ENOCH_SIG
    assert open_note(dup, [GO_PETER_VKEY, GO_PETER_VKEY]) == GO_TEXT


def test_go_note_without_trusted_key_is_rejected() -> None:
    both = GO_TEXT + b"\n" + GO_PETER_SIG + GO_ENOCH_SIG
    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        open_note(both, [])
    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        open_note(GO_SIGNED, [GO_ENOCH_VKEY])


def test_go_invalid_signature_from_known_key() -> None:
    # TestOpen "Invalid signature": four base64 characters spliced into Peter's signature.
    bad = GO_TEXT + b"\n" + GO_PETER_SIG[:60] + b"ABCD" + GO_PETER_SIG[60:]
    with pytest.raises(CheckpointError, match="invalid signature for key PeterNeumann\\+c74f20a3"):
        open_note(bad, [GO_PETER_VKEY])
    # The same damage to an unknown key's signature is ignored, as the spec requires.
    ok = GO_TEXT + b"\n" + GO_PETER_SIG + GO_ENOCH_SIG[:60] + b"ABCD" + GO_ENOCH_SIG[60:]
    assert open_note(ok, [GO_PETER_VKEY]) == GO_TEXT


@pytest.mark.parametrize("note", [
    # TestOpen "Invalid encoded message syntax", byte for byte.
    GO_TEXT,
    GO_TEXT + b"\n",
    GO_TEXT + b"\n" + GO_PETER_SIG[:-1],
    b"\x01" + GO_TEXT + b"\n" + GO_PETER_SIG,
    b"\xff" + GO_TEXT + b"\n" + GO_PETER_SIG,
    GO_TEXT + b"\n" + ("— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZS"
                       "NXgKvqfqdngotpRZb6KE6RyyBwJnAM=").encode(),
    GO_TEXT + b"\n" + GO_PETER_SIG + b"Unexpected line.\n",
])
def test_go_malformed_notes(note: bytes) -> None:
    with pytest.raises(CheckpointError, match=r"malformed|UTF-8|control character"):
        open_note(note, [GO_PETER_VKEY])


def test_signature_count_limit() -> None:
    # The spec requires accepting at least 16; Go (and we) reject more than 100.
    for count in (16, MAX_SIGNATURES):
        assert open_note(GO_TEXT + b"\n" + GO_PETER_SIG * count, [GO_PETER_VKEY]) == GO_TEXT
    with pytest.raises(CheckpointError, match="more than 100 signatures"):
        open_note(GO_TEXT + b"\n" + GO_PETER_SIG * (MAX_SIGNATURES + 1), [GO_PETER_VKEY])


def test_right_name_wrong_key_id_is_an_unknown_signature() -> None:
    # TestOpen "wrongHash": the first base64 characters carry the key ID.
    wrong_id = GO_PETER_SIG.replace(b"x08g", b"xxxx")
    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        open_note(GO_TEXT + b"\n" + wrong_id, [GO_PETER_VKEY])
    assert open_note(GO_TEXT + b"\n" + wrong_id + GO_PETER_SIG, [GO_PETER_VKEY]) == GO_TEXT
    misnamed = GO_PETER_SIG.replace(b"PeterNeumann", b"CarmenSandiego")
    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        open_note(GO_TEXT + b"\n" + misnamed, [GO_PETER_VKEY])


def test_go_mangled_verifier_keys_are_rejected() -> None:
    # TestNewVerifier: every proper substring and every single-byte increment must fail.
    vkey = GO_PETER_VKEY
    mangled = {vkey[i:j] for i in range(len(vkey) + 1) for j in range(i + 1, len(vkey) + 1)}
    mangled |= {vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1:] for i in range(len(vkey))}
    mangled.discard(vkey)
    assert len(mangled) > 1000
    for bad in mangled:
        with pytest.raises(CheckpointError):
            parse_verifier_key(bad)


def test_go_verifier_keys_with_adjusted_ids() -> None:
    # TestNewVerifier: the key IDs are correct for these keys, so only the key check can fail.
    with pytest.raises(CheckpointError, match="must be 32 bytes"):
        parse_verifier_key(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    with pytest.raises(CheckpointError, match="unsupported signature type 0x65"):
        parse_verifier_key("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_conflicting_verifier_keys_are_ambiguous(monkeypatch: pytest.MonkeyPatch) -> None:
    # TestVerifierList: two different keys with one name and ID cannot both be trusted. A real
    # 32-bit ID collision costs ~2**16 key generations, so the parser is made to report one.
    real = checkpoint.parse_verifier_key

    def colliding(vkey: str) -> tuple[str, bytes, Ed25519PublicKey]:
        _, _, key = real(vkey)
        return "PeterNeumann", bytes.fromhex("c74f20a3"), key

    monkeypatch.setattr(checkpoint, "parse_verifier_key", colliding)
    with pytest.raises(CheckpointError, match="ambiguous verifier keys for PeterNeumann"):
        open_note(GO_SIGNED, [GO_PETER_VKEY, GO_ENOCH_VKEY])
    # The same key twice is not ambiguous.
    assert open_note(GO_SIGNED, [GO_PETER_VKEY, GO_PETER_VKEY]) == GO_TEXT


def test_verifier_key_with_forged_id_is_refused() -> None:
    # Another public key claiming Peter's name and key ID fails the ID check.
    forged = "PeterNeumann+c74f20a3+" + base64.b64encode(
        b"\x01" + OTHER_KEY.public_key().public_bytes_raw()).decode()
    with pytest.raises(CheckpointError, match="key ID does not match"):
        open_note(GO_SIGNED, [GO_PETER_VKEY, forged])


@pytest.mark.parametrize(("vkey", "why"), [
    ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key name is empty"),
    ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "space"),
    ("Peter\u3000Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "space"),
    ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
    ("PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 hex digits"),
    ("PeterNeumann+c74f20ag+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 hex digits"),
    ("PeterNeumann+c74f 20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 hex digits"),
    ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq_LDE4izWy10TW", "invalid base64"),
    ("PeterNeumann+c74f20a3+", "empty key"),
    ("PeterNeumann+c74f20a3", "want <name>"),
])
def test_bad_verifier_keys(vkey: str, why: str) -> None:
    with pytest.raises(CheckpointError, match=why):
        parse_verifier_key(vkey)
    with pytest.raises(CheckpointError, match=why):
        open_note(GO_SIGNED, [vkey])


def test_vkeys_must_be_a_sequence_of_keys() -> None:
    with pytest.raises(TypeError, match="not one string"):
        open_note(GO_SIGNED, GO_PETER_VKEY)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\tb", "a\nb", "a\u00a0b", "a\x7f\x01"])
def test_bad_key_names_refused_when_signing(name: str) -> None:
    with pytest.raises(CheckpointError, match="key name"):
        sign_note(GO_TEXT, name, KEY)
    with pytest.raises(CheckpointError, match="key name"):
        verifier_key(name, KEY.public_key())
    with pytest.raises(CheckpointError, match="key name"):
        key_id(name, bytes(32))


def test_key_id_needs_a_32_byte_key() -> None:
    with pytest.raises(CheckpointError, match="32 bytes"):
        key_id("a", bytes(33))


@pytest.mark.parametrize("text", [b"", b"no newline", b"a\r\n", b"tab\there\n", b"\xc3\n"])
def test_sign_note_refuses_unsignable_text(text: bytes) -> None:
    with pytest.raises(CheckpointError):
        sign_note(text, "a", KEY)


def test_text_may_contain_blank_lines() -> None:
    # signed-note: the text is separated from the signatures by the *last* blank line.
    text = ("Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n"
            "ed è subito sera.\n")
    signed = sign_note(text.encode(), "quasimodo.example/salvatore", KEY)
    vkey = verifier_key("quasimodo.example/salvatore", KEY.public_key())
    assert open_note(signed, [vkey]) == text.encode()


@given(text=st.text(st.characters(min_codepoint=0x20, blacklist_categories=["Cs"]) | st.just("\n"),
                    max_size=200))
def test_any_valid_text_round_trips(text: str) -> None:
    raw = (text + "\n").encode()
    assert open_note(sign_note(raw, ORIGIN, KEY), [VKEY]) == raw


# --- checkpoints --------------------------------------------------------------------------------


def test_body_is_exactly_the_spec_layout() -> None:
    cp = Checkpoint(ORIGIN, 5, ROOT)
    assert cp.body() == b"kaoping.example/ledger\n5\n" + ROOT_B64 + b"\n"
    assert Checkpoint(ORIGIN, 0, ROOT, ("ext one", "ext—two")).body() == (
        b"kaoping.example/ledger\n0\n" + ROOT_B64 + b"\next one\next\xe2\x80\x94two\n")


def test_spec_example_body_parses() -> None:
    cp = Checkpoint.parse_body(SPEC_BODY)
    assert cp == Checkpoint("example.com/behind-the-sofa", 20852163,
                            base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="))
    assert cp.body() == SPEC_BODY
    # Its signature is well formed; we hold no key for it, so it can only be "not trusted".
    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        open_checkpoint(SPEC_SIGNED, [VKEY])


def test_checkpoint_round_trip() -> None:
    cp = Checkpoint(ORIGIN, 20852163, ROOT)
    signed = sign_checkpoint(cp, ORIGIN, KEY)
    assert signed.startswith(cp.body() + b"\n\xe2\x80\x94 kaoping.example/ledger ")
    assert signed.endswith(b"\n")
    assert signed.count(b"\n") == 5
    assert open_checkpoint(signed, [VKEY]) == cp
    assert open_checkpoint(signed, [VKEY], origin=ORIGIN) == cp
    # Another trusted key listed alongside does not matter.
    other = verifier_key("other.example", OTHER_KEY.public_key())
    assert open_checkpoint(signed, [other, VKEY]) == cp


def test_extension_lines_are_preserved() -> None:
    cp = Checkpoint(ORIGIN, 7, ROOT, ("— witness line", "another"))
    opened = open_checkpoint(sign_checkpoint(cp, ORIGIN, KEY), [VKEY])
    assert opened == cp
    assert opened.extensions == ("— witness line", "another")


def test_cosigned_checkpoint_opens_with_either_key() -> None:
    # A witness's extra signature line, appended as cosigners do.
    cp = Checkpoint(ORIGIN, 3, ROOT)
    signed = sign_checkpoint(cp, ORIGIN, KEY)
    witness_line = sign_note(cp.body(), "witness.example", OTHER_KEY)[len(cp.body()) + 1:]
    cosigned = signed + witness_line
    witness = verifier_key("witness.example", OTHER_KEY.public_key())
    assert open_checkpoint(cosigned, [VKEY]) == cp
    assert open_checkpoint(cosigned, [witness]) == cp
    assert open_checkpoint(cosigned, [VKEY, witness]) == cp


def _signed() -> bytes:
    return sign_checkpoint(Checkpoint(ORIGIN, 5, ROOT), ORIGIN, KEY)


@pytest.mark.parametrize(("old", "new"), [
    (b"\n5\n", b"\n6\n"),                                   # altered size
    (ROOT_B64, base64.b64encode(bytes(32))),                # altered root
    (b"kaoping.example/ledger\n5", b"kaoping.example/ledgeR\n5"),  # altered origin
])
def test_tampered_checkpoint_fails_signature(old: bytes, new: bytes) -> None:
    signed = _signed()
    assert signed.count(old) == 1
    with pytest.raises(CheckpointError, match="invalid signature"):
        open_checkpoint(signed.replace(old, new), [VKEY])


def test_signature_by_another_key_is_rejected() -> None:
    cp = Checkpoint(ORIGIN, 5, ROOT)
    # Same name, different key: a different key ID, so merely unknown.
    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        open_checkpoint(sign_checkpoint(cp, ORIGIN, OTHER_KEY), [VKEY])
    # Same name and our key's ID in front of another key's signature: verified, and refused.
    signature = OTHER_KEY.sign(cp.body())
    kid = key_id(ORIGIN, KEY.public_key().public_bytes_raw())
    forged = cp.body() + b"\n" + f"— {ORIGIN} ".encode() + base64.b64encode(kid + signature) + b"\n"
    with pytest.raises(CheckpointError, match="invalid signature"):
        open_checkpoint(forged, [VKEY])


def test_wrong_key_id_right_name_is_rejected() -> None:
    signed = _signed()
    body_len = len(Checkpoint(ORIGIN, 5, ROOT).body())
    prefix = body_len + 1 + len(f"— {ORIGIN} ".encode())
    blob = bytearray(base64.b64decode(signed[prefix:-1]))
    blob[0] ^= 0x01
    altered = signed[:prefix] + base64.b64encode(bytes(blob)) + b"\n"
    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        open_checkpoint(altered, [VKEY])


def test_truncated_signature_is_rejected() -> None:
    signed = _signed()
    # Four base64 characters fewer is still base64, but the signature is 3 bytes short.
    with pytest.raises(CheckpointError, match="invalid signature"):
        open_checkpoint(signed[:-5] + b"\n", [VKEY])
    # One character fewer is not base64 at all.
    with pytest.raises(CheckpointError, match="invalid base64"):
        open_checkpoint(signed[:-2] + b"\n", [VKEY])
    # Only the key ID left.
    with pytest.raises(CheckpointError, match="too short"):
        open_checkpoint(signed.split(b" ")[0] + f" {ORIGIN} ".encode()
                        + base64.b64encode(bytes(4)) + b"\n", [VKEY])


def test_note_structure_errors() -> None:
    signed = _signed()
    body = Checkpoint(ORIGIN, 5, ROOT).body()
    with pytest.raises(CheckpointError, match="no blank line"):
        open_checkpoint(signed.replace(body + b"\n", body), [VKEY])
    with pytest.raises(CheckpointError, match="must end with a newline"):
        open_checkpoint(signed[:-1], [VKEY])
    with pytest.raises(CheckpointError, match="no blank line"):
        open_checkpoint(body, [VKEY])


def _sign_body(body: bytes) -> bytes:
    """A correctly signed note around a (possibly malformed) checkpoint body."""
    return sign_note(body, ORIGIN, KEY)


@pytest.mark.parametrize("size", [
    b"007", b"00", b"+7", b"-7", b" 7", b"7 ", b"0x7", b"7_0", b"1e3",
    "\u0667".encode(),                   # ARABIC-INDIC DIGIT SEVEN: int() would accept it
    b"",
    b"184467440737095516150",            # 21 digits
])
def test_malformed_size_is_rejected(size: bytes) -> None:
    body = ORIGIN.encode() + b"\n" + size + b"\n" + ROOT_B64 + b"\n"
    with pytest.raises(CheckpointError, match="malformed tree size"):
        open_checkpoint(_sign_body(body), [VKEY])


def test_size_above_uint64_is_rejected() -> None:
    body = ORIGIN.encode() + b"\n18446744073709551616\n" + ROOT_B64 + b"\n"  # 2**64
    with pytest.raises(CheckpointError, match=r"not an integer in \[0, 2\*\*64\)"):
        open_checkpoint(_sign_body(body), [VKEY])


def test_size_bounds_accepted() -> None:
    for size in (0, 1, 2**64 - 1):
        body = f"{ORIGIN}\n{size}\n".encode() + ROOT_B64 + b"\n"
        assert open_checkpoint(_sign_body(body), [VKEY]).size == size


@pytest.mark.parametrize(("root", "why"), [
    (base64.b64encode(bytes(31)), "31 bytes"),
    (base64.b64encode(bytes(33)), "33 bytes"),
    (b"!!!!", "invalid base64"),
    (base64.urlsafe_b64encode(b"\xfb" * 32), "invalid base64"),   # '-' and '_' are not std
    (ROOT_B64.rstrip(b"="), "invalid base64"),                    # missing padding
    (b"A" * 42 + b"B=", "not canonical"),                         # non-zero trailing bits
    (b" " + ROOT_B64, "invalid base64"),
])
def test_malformed_root_is_rejected(root: bytes, why: str) -> None:
    body = ORIGIN.encode() + b"\n5\n" + root + b"\n"
    with pytest.raises(CheckpointError, match=why):
        open_checkpoint(_sign_body(body), [VKEY])


@pytest.mark.parametrize(("body", "why"), [
    (b"kaoping.example/ledger\n5\n", "has 2 lines"),                         # no root line
    (b"kaoping.example/ledger\n", "has 1 lines"),
    (b"\n5\n" + ROOT_B64 + b"\n", "origin is empty"),
    (b"kaoping.example/ledger\n5\n" + ROOT_B64 + b"\n\nextension\n", "extension line is empty"),
])
def test_malformed_body_lines_are_rejected(body: bytes, why: str) -> None:
    with pytest.raises(CheckpointError, match=why):
        open_checkpoint(_sign_body(body), [VKEY])


def test_parse_body_requires_final_newline_and_clean_text() -> None:
    with pytest.raises(CheckpointError, match="end with a newline"):
        Checkpoint.parse_body(SPEC_BODY[:-1])
    with pytest.raises(CheckpointError, match="control character"):
        Checkpoint.parse_body(SPEC_BODY.replace(b"example", b"exa\rmple"))
    with pytest.raises(CheckpointError, match="UTF-8"):
        Checkpoint.parse_body(b"\xff" + SPEC_BODY)


def test_origin_mismatch_is_rejected() -> None:
    with pytest.raises(CheckpointError, match="origin"):
        open_checkpoint(_signed(), [VKEY], origin="kaoping.example/other")


@pytest.mark.parametrize(("origin", "size", "root", "extensions"), [
    ("", 1, ROOT, ()),
    ("a\nb", 1, ROOT, ()),
    ("a\x00", 1, ROOT, ()),
    ("\ud800", 1, ROOT, ()),
    ("a", -1, ROOT, ()),
    ("a", 2**64, ROOT, ()),
    ("a", True, ROOT, ()),
    ("a", 1, bytes(31), ()),
    ("a", 1, ROOT, ("",)),
    ("a", 1, ROOT, ("x\ny",)),
])
def test_invalid_checkpoint_values_are_refused(origin: str, size: int, root: bytes,
                                               extensions: tuple[str, ...]) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint(origin, size, root, extensions)


_LINE = st.text(st.characters(min_codepoint=0x20, blacklist_categories=["Cs"]), min_size=1,
                max_size=60)


@given(origin=_LINE, size=st.integers(0, 2**64 - 1), root=st.binary(min_size=32, max_size=32),
       extensions=st.lists(_LINE, max_size=3).map(tuple))
def test_sign_then_open_round_trips(origin: str, size: int, root: bytes,
                                    extensions: tuple[str, ...]) -> None:
    cp = Checkpoint(origin, size, root, extensions)
    assert Checkpoint.parse_body(cp.body()) == cp
    assert open_checkpoint(sign_checkpoint(cp, ORIGIN, KEY), [VKEY], origin=origin) == cp


@settings(max_examples=200)
@given(data=st.data())
def test_any_change_to_the_signed_text_is_rejected(data: st.DataObject) -> None:
    cp = Checkpoint(ORIGIN, data.draw(st.integers(0, 2**64 - 1)), data.draw(st.binary(
        min_size=32, max_size=32)))
    signed = bytearray(sign_checkpoint(cp, ORIGIN, KEY))
    index = data.draw(st.integers(0, len(cp.body()) - 1))
    signed[index] = data.draw(st.integers(0, 255).filter(lambda b: b != signed[index]))
    with pytest.raises(CheckpointError):
        open_checkpoint(bytes(signed), [VKEY])


def test_a_retired_key_verifies_checkpoints_only_up_to_its_handover() -> None:
    successor = verifier_key(ORIGIN, OTHER_KEY.public_key())
    at_handover = sign_checkpoint(Checkpoint(ORIGIN, 5, ROOT), ORIGIN, KEY)
    past = sign_checkpoint(Checkpoint(ORIGIN, 6, ROOT), ORIGIN, KEY)
    assert open_checkpoint_within(at_handover, [successor], {VKEY: 5}).size == 5
    with pytest.raises(CheckpointError, match="handover at size 5"):
        open_checkpoint_within(past, [successor], {VKEY: 5})
    with pytest.raises(CheckpointError, match="handover at size 5"):
        open_checkpoint_within(past, [VKEY, successor], {VKEY: 5})  # bounded though given
    cosigned = sign_checkpoint(Checkpoint(ORIGIN, 6, ROOT), ORIGIN, KEY, OTHER_KEY)
    assert open_checkpoint_within(cosigned, [successor], {VKEY: 5}).size == 6
    # A bad signature by a trusted key rejects the note, even if a retired one would do.
    both = sign_checkpoint(Checkpoint(ORIGIN, 5, ROOT), ORIGIN, KEY, OTHER_KEY).decode()
    body, sigs = both.rsplit("\n\n", 1)
    good, bad = sigs.splitlines()
    prefix, _, sig64 = bad.rpartition(" ")
    blob = bytearray(base64.b64decode(sig64))
    blob[-1] ^= 1
    broken = f"{body}\n\n{good}\n{prefix} {base64.b64encode(bytes(blob)).decode()}\n"
    assert open_checkpoint(broken.encode(), [VKEY]).size == 5  # the retired key's line is good
    with pytest.raises(CheckpointError, match="invalid signature"):
        open_checkpoint_within(broken.encode(), [successor], {VKEY: 5})
