"""`tocsin.yaml`: the config-as-code model, its validation, and the snapshot the services run on.

Validation collects every error with its path (`teams.infra.rotations.primary.members[2]: unknown user
"carl"`), so a file with any error is rejected whole and changes nothing. The validated `Config` is
what `config apply` publishes on the CONFIG stream; every service rebuilds its view from it.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import yaml

from tocsin.events.base import Event
from tocsin.events.chatconfig import (
    SECRET_URL_KINDS,
    check_chat_destination,
    check_chat_identities,
    check_chat_providers,
    masked_url,
)
from tocsin.events.durations import parse_duration
from tocsin.events.providers import check_destination, check_providers
from tocsin.events.thresholds import profile_errors

MAX_CONFIG_BYTES = 4 * 1024 * 1024
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

# Fields each contact/channel type takes. Address fields of a person's contact default to the person's own.
CHANNEL_FIELDS: dict[str, dict[str, bool]] = {   # field -> required (for shared channels)
    "email": {"to": True},
    "sms": {"to": True},
    "voice": {"to": True},
    "ntfy": {"topic": True, "server": False, "token": False, "priority": False, "tags": False},
    "pushover": {"user_key": True, "priority": False, "sound": False, "device": False, "retry": False,
                 "expire": False},
    "signal": {"recipient": True},
    "telegram": {"chat_id": True},
    "webpush": {"subscription": False},
    "webhook": {"url": True, "secret": False},
    "mattermost": {"url": False, "channel": False, "mode": False, "server": False, "token": False,
                   "channel_id": False, "icon_url": False},
    "slack": {"url": True},
    "discord": {"url": True},
    "teams": {"url": True},
    "log": {},
}
# The address field of a person's contact that defaults to the person's own email or phone.
PERSONAL_DEFAULTS = {"email": "to", "sms": "to", "voice": "to", "signal": "recipient"}
SECRET_FIELDS = frozenset({"token", "secret", "password", "auth_token", "bot_token", "vapid_private_key",
                           "user_key", "key", "signing_secret", "client_secret"})
# The kinds this version of the notifier delivers; the others are accepted by the config and reported.
DELIVERABLE_KINDS = frozenset({"ntfy", "webhook", "log", "email", "sms", "voice", "pushover", "signal",
                               "telegram", "mattermost", "slack", "discord", "teams", "webpush"})
TARGET_KINDS = ("rotation", "user", "channel", "team")
MATCH_OPS = ("=~", "!~", "!=", "=")
MAX_PATTERN = 256
MAIL_LOCAL_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# The fields a heartbeat host takes, and their types.
HOST_FIELDS: dict[str, type] = {"watch": bool, "team": str, "interval": str, "overdue_after": str, "key": str,
                                "thresholds": str, "channels": list}
MIN_HOST_KEY = 16


def secret_fields(kind: str) -> frozenset[str]:
    """The fields of a `kind` destination that are secret: the shared names, plus a webhook URL that is
    itself the credential (Slack, Discord, Teams, Mattermost) and a browser's push subscription."""
    extra = {"url"} if kind in SECRET_URL_KINDS else {"subscription"} if kind == "webpush" else set()
    return SECRET_FIELDS | extra


def is_secret(key: str, container: Any) -> bool:
    """Whether `key` of this mapping holds a secret: a destination (it has a `type`) by its kind's fields,
    anything else (provider blocks, routes) by the shared names."""
    kind = container.get("type") if isinstance(container, dict) else None
    return key in (secret_fields(kind) if isinstance(kind, str) else SECRET_FIELDS)


class ConfigError(Exception):
    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{path}: {msg}" for path, msg in errors))


# ------------------------------------------------------------------ the model


class Rule(msgspec.Struct, forbid_unknown_fields=True):
    contact: str
    after: str = "0s"


class User(msgspec.Struct, forbid_unknown_fields=True):
    name: str = ""
    email: str = ""
    phone: str = ""
    timezone: str = ""
    role: str = "user"
    contacts: dict[str, dict[str, Any]] = {}
    rules: list[Rule] = []
    chat: dict[str, str] = {}       # chat accounts (telegram, slack, mattermost) whose button presses act as this user


class RotationSpec(msgspec.Struct, forbid_unknown_fields=True):
    members: list[str]
    shift: str = "1w"
    start: str = "2026-01-05T09:00"
    timezone: str = ""


class OverrideSpec(msgspec.Struct, forbid_unknown_fields=True):
    rotation: str
    user: str
    start: str
    end: str


class Step(msgspec.Struct, forbid_unknown_fields=True):
    notify: list[str]
    wait: str = "5m"            # before the next step (or the next round) when nobody acknowledges


class Escalation(msgspec.Struct, forbid_unknown_fields=True):
    steps: list[Step] = []
    repeat: int = 0


class Reminders(msgspec.Struct, forbid_unknown_fields=True):
    every: str = "0s"


class Team(msgspec.Struct, forbid_unknown_fields=True):
    members: list[str] = []       # responders: read and act on the team's incidents
    admins: list[str] = []        # owners: also change the team's config objects
    viewers: list[str] = []       # read the team's incidents, routes and channels; act on nothing
    channels: list[str] = []
    rotations: dict[str, RotationSpec] = {}
    overrides: list[OverrideSpec] = []
    escalation: Escalation = msgspec.field(default_factory=Escalation)
    reminders: Reminders = msgspec.field(default_factory=Reminders)
    shift_reminder: str = "0s"


class Route(msgspec.Struct, forbid_unknown_fields=True):
    source: str
    team: str
    token: str = ""               # only in files; the snapshot carries token_sha256 instead
    token_sha256: str = ""
    match: dict[str, str] = {}
    channels: list[str] = []
    group_by: list[str] = []
    mail_alias: str = ""
    secret: str = ""
    rate_limit: int = 0           # alerts per minute, 0 = the default
    max_body_bytes: int = 0
    fields: dict[str, str] = {}   # webhook source: dotted paths for title, severity, dedup_key, status, details
    resolved_values: list[str] = []   # webhook source: values of the status field that mean resolved


class Silence(msgspec.Struct, forbid_unknown_fields=True):
    """Alerts whose labels match open an incident that pages nobody until `ends` (local wall-clock time in
    the config's time zone); if it still fires then, it pages."""

    matchers: dict[str, str]
    starts: str
    ends: str
    comment: str = ""


class Oidc(msgspec.Struct, forbid_unknown_fields=True):
    """Sign-in through an OpenID Connect provider (authorization code with PKCE)."""

    issuer: str
    client_id: str
    client_secret: str = ""
    scopes: list[str] = msgspec.field(default_factory=lambda: ["openid", "email", "profile"])
    claim: str = "email"          # the ID token claim that names the person: matched to a user's email,
                                  # or, for any other claim, to the username. Nobody is created by sign-in.


class Security(msgspec.Struct, forbid_unknown_fields=True):
    allow_private_networks: bool = False
    oidc: Oidc | None = None


class Config(msgspec.Struct, forbid_unknown_fields=True):
    timezone: str = "UTC"
    providers: dict[str, dict[str, Any]] = {}
    users: dict[str, User] = {}
    channels: dict[str, dict[str, Any]] = {}
    default_channels: list[str] = []
    security: Security = msgspec.field(default_factory=Security)
    teams: dict[str, Team] = {}
    routes: dict[str, Route] = {}
    hosts: dict[str, dict[str, Any]] = {}
    thresholds: dict[str, dict[str, Any]] = {}
    renotify: str = "0s"
    silences: list[Silence] = []
    prune: bool = False

    def __repr__(self) -> str:
        # Never the secrets: a config that reaches a log line or a traceback shows them masked.
        return f"Config({redacted(self)!r})"


class ConfigApplied(Event, frozen=True, kw_only=True, tag="config.applied"):
    revision: int
    config: Config


CONFIG_SUBJECT = "config.applied"
applied_decoder = msgspec.json.Decoder(ConfigApplied)

ROUTE_FIELD_KEYS = frozenset({"title", "severity", "dedup_key", "status", "details"})
SOURCES = ("alertmanager", "grafana", "zabbix", "uptimekuma", "checkly", "pagerduty", "opsgenie", "webhook",
           "email")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ------------------------------------------------------------------ loading


def substitute_env(value: Any, env: dict[str, str], path: str, errors: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in env:
                errors.append((path, f"environment variable {name} is not set"))
                return ""
            return env[name]
        return ENV_REF.sub(repl, value)
    if isinstance(value, dict):
        return {k: substitute_env(v, env, f"{path}.{k}" if path else str(k), errors) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, env, f"{path}[{i}]", errors) for i, v in enumerate(value)]
    return value


def _yaml_scalars_to_str(value: Any) -> Any:
    # YAML reads 2026-11-30T09:00 as a datetime and "on" as a bool; the model wants the text.
    if isinstance(value, datetime):
        return value.isoformat(timespec="minutes") if value.second == 0 else value.isoformat()
    if isinstance(value, dict):
        return {str(k): _yaml_scalars_to_str(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_yaml_scalars_to_str(v) for v in value]
    return value


@dataclass(frozen=True)
class ConfigFile:
    """A file read and type-checked, but not yet checked against what it refers to: a file applied on top
    of the current config may name users or teams that only the current config has."""

    config: Config
    keys: frozenset[str]     # the top-level keys the file sets


def parse_config(text: str | bytes, env: dict[str, str] | None = None) -> Config:
    """Parse and validate a whole, self-contained file; raise ConfigError with every problem found."""
    config = read_config(text, env).config
    errors = validate(config)
    if errors:
        raise ConfigError(errors)
    return config


def read_config(text: str | bytes, env: dict[str, str] | None = None) -> ConfigFile:
    """Parse a file and check its shape and types; raise ConfigError with every problem found."""
    raw_bytes = text.encode() if isinstance(text, str) else text
    if len(raw_bytes) > MAX_CONFIG_BYTES:
        raise ConfigError([("", f"config is larger than {MAX_CONFIG_BYTES} bytes")])
    try:
        doc = yaml.safe_load(raw_bytes) or {}
    except yaml.YAMLError as exc:
        raise ConfigError([("", f"not valid YAML: {exc}")]) from None
    if not isinstance(doc, dict):
        raise ConfigError([("", "the top level must be a mapping")])
    try:
        msgspec.json.encode(doc)
    except UnicodeEncodeError:
        # YAML's "\ud800" escapes make text that is not Unicode; nothing downstream could store it.
        raise ConfigError([("", "contains text that is not valid Unicode (an unpaired surrogate escape)")]) from None
    except TypeError:
        pass  # a YAML type JSON has no form for; the type checks below name its path
    errors: list[tuple[str, str]] = []
    doc = substitute_env(_yaml_scalars_to_str(doc), dict(os.environ) if env is None else env, "", errors)
    errors.extend(_shape_errors(doc))
    if errors:
        raise ConfigError(errors)
    try:
        config = msgspec.convert(doc, Config, str_keys=True)
    except msgspec.ValidationError as exc:
        raise ConfigError([_msgspec_error(exc)]) from None
    return ConfigFile(config=config, keys=frozenset(doc))


def _msgspec_error(exc: msgspec.ValidationError, prefix: str = "") -> tuple[str, str]:
    text = str(exc)
    m = re.search(r" - at `\$(.*)`$", text)
    if not m:
        return (prefix, text)
    path = m.group(1).replace("[...]", "")
    return ((prefix + path) if path.startswith("[") else ".".join(p for p in (prefix, path.lstrip(".")) if p),
            text[: m.start()])


_ENTRY_TYPES: dict[str, type] = {"users": User, "teams": Team, "routes": Route}


def _shape_errors(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """Type errors entry by entry, so each is reported with the name of the user, team or route it is in
    (msgspec alone stops at the first and cannot name a mapping key)."""
    errors: list[tuple[str, str]] = []
    known = set(Config.__struct_fields__)
    for key in doc:
        if key not in known:
            errors.append((key, f"unknown key (one of {', '.join(sorted(known))})"))
    for name, kind in _ENTRY_TYPES.items():
        entries = doc.get(name)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            errors.append((name, "must be a mapping of names"))
            continue
        for entry_name, entry in entries.items():
            try:
                msgspec.convert(entry, kind, str_keys=True)
            except msgspec.ValidationError as exc:
                errors.append(_msgspec_error(exc, f"{name}.{entry_name}"))
    return errors


# ------------------------------------------------------------------ validation


def _check_zone(name: str, path: str, errors: list[tuple[str, str]]) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append((path, f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)"))


def _check_duration(text: str, path: str, errors: list[tuple[str, str]]) -> timedelta | None:
    try:
        return parse_duration(text)
    except ValueError as exc:
        errors.append((path, str(exc)))
        return None


def _check_url(url: Any, path: str, errors: list[tuple[str, str]], secret: bool = False) -> None:
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        errors.append((path, f"not an http(s) URL: {masked_url(url) if secret else repr(url)}"))


def _check_destination(kind: Any, fields: dict[str, Any], path: str, errors: list[tuple[str, str]],
                       personal: bool) -> None:
    if kind not in CHANNEL_FIELDS:
        errors.append((f"{path}.type", f"unknown type {kind!r} (one of {', '.join(sorted(CHANNEL_FIELDS))})"))
        return
    allowed = CHANNEL_FIELDS[kind]
    for key, value in fields.items():
        if key == "type":
            continue
        if key not in allowed:
            errors.append((f"{path}.{key}", f"unknown field for a {kind} channel"))
        elif value is None or isinstance(value, dict):
            errors.append((f"{path}.{key}", "must be a value"))
    for key, required in allowed.items():
        # A person's email/sms/voice contact defaults to their own address.
        if required and key not in fields and not (personal and kind in PERSONAL_DEFAULTS):
            errors.append((f"{path}.{key}", f"required for a {kind} channel"))
    if kind in ("webhook", "slack", "discord", "teams") or (kind == "mattermost" and "url" in fields):
        _check_url(fields.get("url"), f"{path}.url", errors, secret=kind in SECRET_URL_KINDS)
    check_destination(kind, fields, path, errors)
    check_chat_destination(kind, fields, path, errors)
    if kind == "ntfy" and "server" in fields:
        _check_url(fields["server"], f"{path}.server", errors)
    if kind == "ntfy" and not re.fullmatch(r"[-_A-Za-z0-9]{1,64}", str(fields.get("topic", "x"))):
        errors.append((f"{path}.topic", "an ntfy topic is 1-64 letters, digits, - or _"))


def _check_matchers(matchers: dict[str, str], path: str, errors: list[tuple[str, str]]) -> None:
    for label, value in matchers.items():
        op, pattern = parse_matcher(str(value))
        mpath = f"{path}.{label}"
        if len(pattern) > MAX_PATTERN:
            errors.append((mpath, f"a pattern is at most {MAX_PATTERN} characters"))
        elif op in ("=~", "!~"):
            try:
                re.compile(pattern)
            except re.error as exc:
                errors.append((mpath, f"not a valid regular expression: {exc}"))


def _parse_local(text: str, path: str, errors: list[tuple[str, str]]) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        errors.append((path, f"not a date-time: {text!r} (use 2026-11-30T09:00)"))
        return None
    if value.tzinfo is not None:
        errors.append((path, "give the local wall-clock time without an offset; the zone says where"))
        return None
    return value


def parse_matcher(value: str) -> tuple[str, str]:
    """`=~prod|staging` -> ("=~", "prod|staging"); a bare value means equality."""
    for op in MATCH_OPS:
        if value.startswith(op):
            return op, value[len(op):]
    return "=", value


def validate(config: Config) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    _check_zone(config.timezone, "timezone", errors)
    users, channels, teams = config.users, config.channels, config.teams

    for name, user in users.items():
        path = f"users.{name}"
        if not NAME.match(name):
            errors.append((path, "a name is letters, digits, '.', '_' or '-' (at most 63)"))
        if user.role not in ("admin", "user"):
            errors.append((f"{path}.role", f"must be admin or user, not {user.role!r}"))
        if user.phone and not E164.match(user.phone):
            errors.append((f"{path}.phone", "must be an E.164 number such as +15550003333"))
        if user.email and "@" not in user.email:
            errors.append((f"{path}.email", "not an email address"))
        if user.timezone:
            _check_zone(user.timezone, f"{path}.timezone", errors)
        for cname, contact in user.contacts.items():
            cpath = f"{path}.contacts.{cname}"
            _check_destination(contact.get("type"), contact, cpath, errors, personal=True)
            kind = contact.get("type")
            if kind in ("sms", "voice", "signal") and not (contact.get(PERSONAL_DEFAULTS[kind]) or user.phone):
                errors.append((cpath, f"a {kind} contact needs the user's phone or its own "
                                      f"'{PERSONAL_DEFAULTS[kind]}'"))

            if kind == "email" and not (contact.get("to") or user.email):
                errors.append((cpath, "an email contact needs the user's email or its own 'to'"))
        for i, rule in enumerate(user.rules):
            rpath = f"{path}.rules[{i}]"
            if rule.contact not in user.contacts:
                errors.append((f"{rpath}.contact", f"unknown contact {rule.contact!r}"))
            _check_duration(rule.after, f"{rpath}.after", errors)

    for name, channel in channels.items():
        if not NAME.match(name):
            errors.append((f"channels.{name}", "a name is letters, digits, '.', '_' or '-'"))
        _check_destination(channel.get("type"), channel, f"channels.{name}", errors, personal=False)
    for i, cname in enumerate(config.default_channels):
        if cname not in channels:
            errors.append((f"default_channels[{i}]", f'unknown channel "{cname}"'))

    for tname, team in teams.items():
        path = f"teams.{tname}"
        if not NAME.match(tname):
            errors.append((path, "a name is letters, digits, '.', '_' or '-'"))
        for field_name in ("members", "admins", "viewers"):
            for i, member in enumerate(getattr(team, field_name)):
                if member not in users:
                    errors.append((f"{path}.{field_name}[{i}]", f'unknown user "{member}"'))
        for i, cname in enumerate(team.channels):
            if cname not in channels:
                errors.append((f"{path}.channels[{i}]", f'unknown channel "{cname}"'))
        for rname, rot in team.rotations.items():
            rpath = f"{path}.rotations.{rname}"
            if not rot.members:
                errors.append((f"{rpath}.members", "a rotation needs at least one member"))
            for i, member in enumerate(rot.members):
                if member not in users:
                    errors.append((f"{rpath}.members[{i}]", f'unknown user "{member}"'))
            shift = _check_duration(rot.shift, f"{rpath}.shift", errors)
            if shift is not None and shift < timedelta(minutes=1):
                errors.append((f"{rpath}.shift", "a shift is at least 1m"))
            _parse_local(rot.start, f"{rpath}.start", errors)
            if rot.timezone:
                _check_zone(rot.timezone, f"{rpath}.timezone", errors)
        for i, ov in enumerate(team.overrides):
            opath = f"{path}.overrides[{i}]"
            if ov.rotation not in team.rotations:
                errors.append((f"{opath}.rotation", f'unknown rotation "{ov.rotation}"'))
            if ov.user not in users:
                errors.append((f"{opath}.user", f'unknown user "{ov.user}"'))
            start = _parse_local(ov.start, f"{opath}.start", errors)
            end = _parse_local(ov.end, f"{opath}.end", errors)
            if start and end and end <= start:
                errors.append((f"{opath}.end", "must be after start"))
        if not team.escalation.steps:
            errors.append((f"{path}.escalation.steps", "a team needs at least one escalation step"))
        if not 0 <= team.escalation.repeat <= 10:
            errors.append((f"{path}.escalation.repeat", "must be between 0 and 10"))
        for i, step in enumerate(team.escalation.steps):
            spath = f"{path}.escalation.steps[{i}]"
            _check_duration(step.wait, f"{spath}.wait", errors)
            if not step.notify:
                errors.append((f"{spath}.notify", "a step needs at least one target"))
            for j, target in enumerate(step.notify):
                kind, _, ref = target.partition(":")
                tpath = f"{spath}.notify[{j}]"
                known: dict[str, dict[str, Any]] = {
                    "rotation": team.rotations, "user": users, "channel": channels, "team": teams}
                if kind not in known:
                    errors.append((tpath, f"target {target!r} must be rotation:, user:, channel: or team:"))
                elif ref not in known[kind]:
                    errors.append((tpath, f'unknown {kind} "{ref}"'))
        _check_duration(team.reminders.every, f"{path}.reminders.every", errors)
        _check_duration(team.shift_reminder, f"{path}.shift_reminder", errors)

    aliases: dict[str, str] = {}
    for rname, route in config.routes.items():
        path = f"routes.{rname}"
        if not NAME.match(rname):
            errors.append((path, "a name is letters, digits, '.', '_' or '-'"))
        if route.source not in SOURCES:
            errors.append((f"{path}.source", f"unknown source {route.source!r} (one of {', '.join(SOURCES)})"))
        if route.team not in teams:
            errors.append((f"{path}.team", f'unknown team "{route.team}"'))
        if route.token and len(route.token) < 16:
            errors.append((f"{path}.token", "a route token is at least 16 characters"))
        for i, cname in enumerate(route.channels):
            if cname not in channels:
                errors.append((f"{path}.channels[{i}]", f'unknown channel "{cname}"'))
        _check_matchers(route.match, f"{path}.match", errors)
        if route.mail_alias:
            # Mail systems treat local parts without regard to case, so aliases are unique that way too.
            alias = route.mail_alias.lower()
            if not MAIL_LOCAL_PART.match(route.mail_alias):
                errors.append((f"{path}.mail_alias", "a mail alias is letters, digits, '.', '_' or '-' "
                                                     "(at most 64)"))
            elif route.source != "email":
                errors.append((f"{path}.mail_alias", "only a route with source: email takes mail"))
            elif alias in aliases:
                errors.append((f"{path}.mail_alias", f"already used by route {aliases[alias]}"))
            aliases[alias] = rname
        for key in route.fields:
            if key not in ROUTE_FIELD_KEYS:
                errors.append((f"{path}.fields.{key}",
                               f"unknown field (one of {', '.join(sorted(ROUTE_FIELD_KEYS))})"))
        if (route.fields or route.resolved_values) and route.source != "webhook":
            errors.append((f"{path}.fields", "fields and resolved_values apply to webhook routes only"))
        if route.rate_limit < 0 or route.max_body_bytes < 0:
            errors.append((path, "limits cannot be negative"))
    _check_hosts(config, errors)
    errors.extend(profile_errors(config.thresholds))
    for i, silence in enumerate(config.silences):
        spath = f"silences[{i}]"
        if not silence.matchers:
            errors.append((f"{spath}.matchers", "a silence needs at least one matcher"))
        _check_matchers(silence.matchers, f"{spath}.matchers", errors)
        starts = _parse_local(silence.starts, f"{spath}.starts", errors)
        ends = _parse_local(silence.ends, f"{spath}.ends", errors)
        if starts and ends and ends <= starts:
            errors.append((f"{spath}.ends", "must be after starts"))
    _check_duration(config.renotify, "renotify", errors)
    _check_oidc(config, errors)
    check_providers(config.providers, errors)
    for name, provider in config.providers.items():
        for key in ("server", "base_url", "rest_url"):
            if key in provider:
                _check_url(provider[key], f"providers.{name}.{key}", errors)
    check_chat_providers(config.providers, errors)
    check_chat_identities(config.users, errors)
    return errors


def _check_oidc(config: Config, errors: list[tuple[str, str]]) -> None:
    oidc = config.security.oidc
    if oidc is None:
        return
    path = "security.oidc"
    issuer = urlsplit(oidc.issuer)
    if issuer.scheme not in ("http", "https") or not issuer.hostname or issuer.query or issuer.fragment:
        errors.append((f"{path}.issuer", f"not an issuer URL: {oidc.issuer!r}"))
    elif issuer.scheme == "http" and issuer.hostname not in ("127.0.0.1", "localhost", "::1"):
        errors.append((f"{path}.issuer", "an issuer is https (plain http only on loopback, for testing)"))
    if not oidc.client_id:
        errors.append((f"{path}.client_id", "required"))
    if "openid" not in oidc.scopes:
        errors.append((f"{path}.scopes", "must include openid"))
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}", oidc.claim):
        errors.append((f"{path}.claim", f"not a claim name: {oidc.claim!r}"))


def _check_hosts(config: Config, errors: list[tuple[str, str]]) -> None:
    """`hosts:` stays a mapping of plain mappings in the model (old snapshots must still decode), so its
    fields are type-checked here, each error with its path."""
    for name, host in config.hosts.items():
        path = f"hosts.{name}"
        if not NAME.match(name):
            errors.append((path, "a name is letters, digits, '.', '_' or '-' (at most 63)"))
        for key, value in host.items():
            kind = HOST_FIELDS.get(key)
            if kind is None:
                errors.append((f"{path}.{key}", f"unknown field (one of {', '.join(sorted(HOST_FIELDS))})"))
            elif not isinstance(value, kind):
                wanted = {list: "a list", bool: "true or false", str: "text"}.get(kind, kind.__name__)
                if key in ("interval", "overdue_after"):
                    wanted = "a duration such as 30s or 5m"
                errors.append((f"{path}.{key}", f"must be {wanted}"))
        watch, team = host.get("watch", False), host.get("team")
        if isinstance(team, str) and team not in config.teams:
            errors.append((f"{path}.team", f'unknown team "{team}"'))
        elif team is None and watch is True:
            errors.append((f"{path}.team", "a watched host needs the team to page"))
        for field_name in ("interval", "overdue_after"):
            if isinstance(host.get(field_name), str):
                every = _check_duration(host[field_name], f"{path}.{field_name}", errors)
                if every is not None and every < timedelta(seconds=1):
                    errors.append((f"{path}.{field_name}", "at least 1s"))
        host_key = host.get("key")
        if isinstance(host_key, str) and len(host_key) < MIN_HOST_KEY:
            errors.append((f"{path}.key", f"a host key is at least {MIN_HOST_KEY} characters"))
        thresholds = host.get("thresholds")
        if isinstance(thresholds, str) and thresholds not in config.thresholds:
            errors.append((f"{path}.thresholds", f'unknown thresholds "{thresholds}"'))
        if isinstance(host.get("channels"), list):
            for i, cname in enumerate(host["channels"]):
                if not isinstance(cname, str) or cname not in config.channels:
                    errors.append((f"{path}.channels[{i}]", f'unknown channel "{cname}"'))


def warnings(config: Config) -> list[tuple[str, str]]:
    """Valid, but worth telling: destinations this version cannot deliver to yet."""
    out = []
    for name, ch in config.channels.items():
        if ch.get("type") not in DELIVERABLE_KINDS:
            out.append((f"channels.{name}", f"{ch.get('type')} delivery is not available in this version"))
    for uname, user in config.users.items():
        for cname, contact in user.contacts.items():
            if contact.get("type") not in DELIVERABLE_KINDS:
                out.append((f"users.{uname}.contacts.{cname}",
                            f"{contact.get('type')} delivery is not available in this version"))
    return out


def redacted(config: Config) -> dict[str, Any]:
    """The config as a plain document with every secret masked (for export and logs)."""
    def mask(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: mask(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        if key in SECRET_FIELDS and value:
            return "********"
        return value
    doc = msgspec.to_builtins(config)
    destinations = [*doc.get("channels", {}).values(),
                    *(c for u in doc.get("users", {}).values() for c in u.get("contacts", {}).values())]
    for dest in destinations:
        for key in secret_fields(str(dest.get("type"))) & dest.keys():
            if dest[key]:
                dest[key] = "********"
    for route in doc.get("routes", {}).values():
        route.pop("token", None)
        route.pop("token_sha256", None)
        if route.get("secret"):
            route["secret"] = "********"
    return mask(doc)  # type: ignore[no-any-return]
