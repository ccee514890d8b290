"""Secrets at rest: channel, contact and provider secrets are sealed (Fernet, a key derived from the
installation's secret key) before a config revision is stored in Postgres or published on the CONFIG
stream, and unsealed only where they are used: the notifier, and the API when it merges a change.

A sealed value is `enc:v1:<fernet token>`, so a config written before sealing (plain values) still reads.
Route secrets and heartbeat host keys stay as they are: the intake checks signatures with them and holds
no key (see docs/configuration.md).
"""

from __future__ import annotations

from typing import Any

import msgspec
from cryptography.fernet import Fernet, InvalidToken

from tocsin.events import keys
from tocsin.events.config import Config, is_secret

PREFIX = "enc:v1:"
MASK = "********"


class SealError(Exception):
    """A sealed value this key cannot open (the installation's secret key changed)."""


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(keys.fernet_key(key))

    @classmethod
    def from_env(cls) -> Sealer:
        return cls(keys.secret_key())

    def seal(self, value: str) -> str:
        if value.startswith(PREFIX):
            return value
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def unseal(self, value: str) -> str:
        if not value.startswith(PREFIX):
            return value
        try:
            return self._fernet.decrypt(value[len(PREFIX):].encode()).decode()
        except InvalidToken:
            raise SealError("a stored secret cannot be decrypted with this installation's secret key "
                            "(was TOCSIN_SECRET_KEY changed?)") from None

    def seal_config(self, config: Config) -> Config:
        return _map_secrets(config, self.seal)

    def unseal_config(self, config: Config) -> Config:
        return _map_secrets(config, self.unseal)


def _fields(values: dict[str, Any], change: Any) -> dict[str, Any]:
    return {k: change(str(v)) if is_secret(k, values) and v not in (None, "") and not isinstance(v, dict | list)
            else v for k, v in values.items()}


def _map_secrets(config: Config, change: Any) -> Config:
    users = {name: msgspec.structs.replace(user, contacts={c: _fields(f, change) for c, f in user.contacts.items()})
             for name, user in config.users.items()}
    security = config.security
    if security.oidc is not None and security.oidc.client_secret:
        security = msgspec.structs.replace(security, oidc=msgspec.structs.replace(
            security.oidc, client_secret=change(security.oidc.client_secret)))
    return msgspec.structs.replace(
        config, users=users, security=security,
        channels={name: _fields(fields, change) for name, fields in config.channels.items()},
        providers={name: _fields(fields, change) for name, fields in config.providers.items()})


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)
