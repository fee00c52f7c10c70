"""Ed25519 key files: generated on first use with mode 0600, or loaded from the configured path."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


class KeyFileError(RuntimeError):
    """A key file exists but cannot be used."""


def load_or_create_ed25519(path: str | Path) -> Ed25519PrivateKey:
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_ed25519(path)  # another process created it first
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        return key
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        msg = f"{path}: not a PEM private key ({exc})"
        raise KeyFileError(msg) from exc
    if not isinstance(loaded, Ed25519PrivateKey):
        msg = f"{path}: expected an Ed25519 private key, found {type(loaded).__name__}"
        raise KeyFileError(msg)
    return loaded
