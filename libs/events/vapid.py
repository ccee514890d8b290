"""The installation's VAPID key for Web Push (RFC 8292): loaded once from config, never shown in an error.

Accepted forms: the base64url raw 32-byte private key that `npx web-push generate-vapid-keys` and
`tocsin`'s docs produce, base64url DER, or a PEM block. Browsers subscribe with the matching public key
(`applicationServerKey`), which `vapid_public_key` gives.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02, VapidException


class VapidKeyError(ValueError):
    pass


def load_vapid_key(text: str) -> Vapid02:
    text = text.strip()
    if not text:
        raise VapidKeyError("required: the VAPID private key (base64url, as web-push generate-vapid-keys "
                            "prints it, or PEM)")
    try:
        if text.startswith("-----BEGIN"):
            return Vapid02.from_pem(text.encode())
        return Vapid02.from_string(text)
    except (VapidException, ValueError, TypeError, binascii.Error):
        # The message of the underlying error may quote the key: say only what is wrong.
        raise VapidKeyError("not a P-256 private key (base64url raw or DER, or PEM)") from None


def vapid_public_key(key: Vapid02) -> str:
    """The public key as browsers take it for `pushManager.subscribe({applicationServerKey})`."""
    raw = key.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
