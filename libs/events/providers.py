"""The `providers:` blocks of the delivery channels that need an account: their fields, checked at load time.

Each known provider takes a fixed set of fields; an unknown field or a missing required one is an error with
its path (`providers.twilio.from: must be an E.164 number ...`), so a typo cannot silently disable paging.
Providers not listed here are left to their own channel modules.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from tocsin.events.durations import parse_duration

E164 = re.compile(r"^\+[1-9]\d{6,14}$")

# The provider block a channel kind takes its account from (by default the block of the kind's own name).
PROVIDER_OF_KIND = {"email": "smtp", "sms": "twilio", "voice": "twilio"}

# provider -> field -> required
PROVIDER_FIELDS: dict[str, dict[str, bool]] = {
    "smtp": {"host": True, "port": False, "starttls": False, "tls": False, "username": False, "password": False,
             "from": True, "ca_file": False, "timeout": False},
    "twilio": {"account_sid": True, "auth_token": True, "from": True, "base_url": False},
    "pushover": {"token": True, "base_url": False, "poll": False},
    "signal": {"cli_path": False, "account": False, "rest_url": False},
}


def check_providers(providers: dict[str, dict[str, Any]], errors: list[tuple[str, str]]) -> None:
    for name, fields in providers.items():
        allowed = PROVIDER_FIELDS.get(name)
        path = f"providers.{name}"
        if allowed is None:
            continue
        if not isinstance(fields, dict):
            errors.append((path, "must be a mapping"))
            continue
        for key in fields:
            if key not in allowed:
                errors.append((f"{path}.{key}", f"unknown field (one of {', '.join(sorted(allowed))})"))
        for key, required in allowed.items():
            if required and not fields.get(key):
                errors.append((f"{path}.{key}", f"required for {name}"))
        if name in _CHECKS:
            _CHECKS[name](fields, path, errors)


def _smtp(fields: dict[str, Any], path: str, errors: list[tuple[str, str]]) -> None:
    port = fields.get("port", 587)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        errors.append((f"{path}.port", "must be a port number (1-65535)"))
    for key in ("starttls", "tls"):
        if key in fields and not isinstance(fields[key], bool):
            errors.append((f"{path}.{key}", "must be true or false"))
    if fields.get("starttls") is True and fields.get("tls") is True:
        errors.append((path, "choose starttls (upgrade a plain connection) or tls (TLS from the start), not both"))
    if bool(fields.get("username")) != bool(fields.get("password")):
        errors.append((path, "username and password go together"))
    sender = fields.get("from")
    if sender and (not isinstance(sender, str) or "@" not in sender):
        errors.append((f"{path}.from", "not an email address"))
    timeout = fields.get("timeout", 10)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 120:
        errors.append((f"{path}.timeout", "must be a number of seconds (at most 120)"))


def _twilio(fields: dict[str, Any], path: str, errors: list[tuple[str, str]]) -> None:
    sid = fields.get("account_sid")
    if sid and not str(sid).startswith("AC"):
        errors.append((f"{path}.account_sid", "a Twilio account SID starts with AC"))
    sender = fields.get("from")
    if sender and not E164.match(str(sender)):
        errors.append((f"{path}.from", "must be an E.164 number such as +15550001111"))


def _signal(fields: dict[str, Any], path: str, errors: list[tuple[str, str]]) -> None:
    if bool(fields.get("cli_path")) == bool(fields.get("rest_url")):
        errors.append((path, "give either cli_path (signal-cli as a command) or rest_url (its HTTP daemon)"))
    if fields.get("cli_path") and not fields.get("account"):
        errors.append((f"{path}.account", "the signal-cli command needs the account to send from"))
    account = fields.get("account")
    if account and not E164.match(str(account)):
        errors.append((f"{path}.account", "must be an E.164 number such as +15550002222"))


def _pushover(fields: dict[str, Any], path: str, errors: list[tuple[str, str]]) -> None:
    if "poll" in fields:
        try:
            every = parse_duration(str(fields["poll"]))
        except ValueError as exc:
            errors.append((f"{path}.poll", str(exc)))
            return
        if every < timedelta(seconds=5):
            errors.append((f"{path}.poll", "at least 5s (Pushover asks not to query a receipt more often)"))


_CHECKS = {"smtp": _smtp, "twilio": _twilio, "pushover": _pushover, "signal": _signal}


def check_destination(kind: str, fields: dict[str, Any], path: str, errors: list[tuple[str, str]]) -> None:
    """Field values of an email, sms, voice or pushover destination (a contact or a shared channel)."""
    if kind in ("sms", "voice") and "to" in fields:
        # One number: a text or a call is one provider request, and it succeeds or fails as one.
        if not isinstance(fields["to"], str) or not E164.match(fields["to"]):
            errors.append((f"{path}.to", f"must be one E.164 number such as +15550003333, not {fields['to']!r}"))
    if kind == "email" and "to" in fields:
        addresses = fields["to"] if isinstance(fields["to"], list) else str(fields["to"]).split(",")
        for address in addresses:
            if not isinstance(address, str) or "@" not in address or any(c in address for c in "\r\n<>"):
                errors.append((f"{path}.to", f"{address!r} is not an email address"))
    if kind == "pushover":
        _integer(fields, "priority", -2, 2, path, errors)
        _integer(fields, "retry", 30, 10800, path, errors)
        _integer(fields, "expire", 30, 10800, path, errors)


def _integer(fields: dict[str, Any], key: str, low: int, high: int, path: str,
             errors: list[tuple[str, str]]) -> None:
    if key not in fields:
        return
    value = fields[key]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        errors.append((f"{path}.{key}", f"must be a whole number from {low} to {high}"))
