"""The installation's secret key: signs action links and callbacks, sessions, and encrypts secrets at rest.

It comes from `TOCSIN_SECRET_KEY`, or, under `tocsin up`, from `secret.key` in the data dir (generated on the
first start, readable only by its owner). There is no built-in fallback: a process that needs the key and
has none refuses to start, so no installation ever runs on a key that someone else knows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_ENV = "TOCSIN_SECRET_KEY"
KEY_FILE = "secret.key"
MIN_KEY_CHARS = 32


class MissingSecretKey(RuntimeError):
    pass


def _from_text(text: str, where: str) -> bytes:
    text = text.strip()
    if len(text) < MIN_KEY_CHARS:
        raise MissingSecretKey(f"{where} is shorter than {MIN_KEY_CHARS} characters; "
                               "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return hashlib.sha256(text.encode()).digest()


def secret_key(data_dir: Path | None = None) -> bytes:
    """The key from the environment, else from (or generated into) the data dir; else MissingSecretKey."""
    if os.environ.get(KEY_ENV):
        return _from_text(os.environ[KEY_ENV], KEY_ENV)
    if data_dir is None:
        raise MissingSecretKey(f"no secret key: set {KEY_ENV} (at least {MIN_KEY_CHARS} characters), "
                               "or run under `tocsin up`, which keeps one in its data dir")
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48) + "\n")
    return _from_text(path.read_text(), str(path))


def env_secret_key() -> bytes:
    """The key from TOCSIN_SECRET_KEY, or empty when unset (settings objects; the service refuses to start)."""
    return _from_text(os.environ[KEY_ENV], KEY_ENV) if os.environ.get(KEY_ENV) else b""


def derive(key: bytes, purpose: str) -> bytes:
    """A separate key per use (action links, sessions, encryption), so one use can never stand for another."""
    if not key:
        raise MissingSecretKey(f"no secret key (set {KEY_ENV})")
    return hmac.new(key, f"tocsin/{purpose}".encode(), hashlib.sha256).digest()


def fernet_key(key: bytes, purpose: str = "secrets-at-rest") -> bytes:
    """A key in the form `cryptography.fernet.Fernet` takes."""
    return base64.urlsafe_b64encode(derive(key, purpose))
