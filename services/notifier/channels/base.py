"""What every channel shares: the outcome it classifies, and the HTTP status rule."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar, Literal
from urllib.parse import parse_qsl, urlsplit

import aiohttp

from tocsin.events.chatconfig import SECRET_URL_KINDS
from tocsin.events.config import secret_fields
from tocsin.events.notify import NotificationRequested
from tocsin.events.signing import action_token
from tocsin.notifier.policies import Bundling, RateLimit

Outcome = Literal["ok", "retry", "permanent"]


@dataclass(frozen=True)
class DeliveryResult:
    outcome: Outcome
    provider_id: str = ""
    error: str = ""
    retry_after: float | None = None

    @classmethod
    def ok(cls, provider_id: str = "") -> DeliveryResult:
        return cls("ok", provider_id=provider_id)


def classify_status(status: int) -> Outcome:
    """2xx ok; 408, 425, 429 and 5xx are worth retrying; any other answer will not change by itself."""
    if 200 <= status < 300:
        return "ok"
    if status in (408, 425, 429) or status >= 500:
        return "retry"
    return "permanent"


async def result_of(resp: aiohttp.ClientResponse, provider_id: str = "") -> DeliveryResult:
    outcome = classify_status(resp.status)
    if outcome == "ok":
        return DeliveryResult.ok(provider_id)
    text = (await resp.text(errors="replace"))[:300]
    retry_after = None
    if resp.headers.get("Retry-After", "").isdigit():
        retry_after = float(resp.headers["Retry-After"])
    return DeliveryResult(outcome, error=f"HTTP {resp.status}: {text}", retry_after=retry_after)


@dataclass(frozen=True)
class Target:
    """Where one notification goes: the command's public fields plus the secrets the notifier holds."""

    fields: dict[str, str]
    provider: dict[str, str]
    kind: str = ""          # the channel kind: some kinds have secret fields of their own (secret_fields)

    def get(self, key: str, default: str = "") -> str:
        return self.fields.get(key) or self.provider.get(key) or default

    def secrets(self) -> list[str]:
        """Every secret value, and the parts of one that a provider or a library may quote on their own:
        the path of a webhook URL whose path is the credential, the endpoint and auth key of a push
        subscription. Longest first, so a part never leaves the rest of a longer secret readable."""
        whole = {v for d in (self.fields, self.provider) for k, v in d.items()
                 if k in secret_fields(self.kind) and v}
        parts: set[str] = set()
        if self.kind in SECRET_URL_KINDS and self.fields.get("url"):
            url = urlsplit(self.fields["url"])
            parts.update((url.path + (f"?{url.query}" if url.query else ""), url.path))
            # A provider may quote just the token: the long path segments and the query values.
            parts.update(s for s in url.path.split("/") if len(s) >= 16)
            parts.update(v for _, v in parse_qsl(url.query))
        if self.kind == "webpush" and self.fields.get("subscription"):
            parts.update(_subscription_secrets(self.fields["subscription"]))
        # Every configured secret, however short; of the parts only those that cannot be ordinary words.
        return sorted(whole | {p for p in parts if len(p) >= 6}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """The text with every secret of this target masked (a provider may echo a request back). Errors
        are cut to a length before they are scrubbed, so a secret cut off at the end is masked too."""
        for secret in self.secrets():
            text = text.replace(secret, "********")
            for size in range(len(secret) - 1, 3, -1):
                if text.endswith(secret[:size]):
                    text = text[:-size] + "********"
                    break
        return text

    def __repr__(self) -> str:
        def mask(d: dict[str, str]) -> dict[str, str]:
            return {k: "********" if k in secret_fields(self.kind) and v else v for k, v in d.items()}
        return f"Target(kind={self.kind!r}, fields={mask(self.fields)!r}, provider={mask(self.provider)!r})"


def _subscription_secrets(text: str) -> list[str]:
    try:
        sub = json.loads(text)
        endpoint = str(sub["endpoint"])
        return [endpoint, urlsplit(endpoint).path, str(sub["keys"]["auth"]), str(sub["keys"]["p256dh"])]
    except (ValueError, KeyError, TypeError):
        return []


@dataclass(frozen=True)
class ActionLinks:
    """Signed links that let the person a page was sent to acknowledge or resolve it from the channel.

    The API's `/api/v1/answer/{token}` serves them: GET shows a confirm page that POSTs (so a mail scanner
    that follows links cannot acknowledge), POST acts (ntfy and Web Push action buttons post directly)."""

    public_url: str
    key: bytes

    def token(self, message: NotificationRequested) -> str:
        return action_token(self.key, incident_id=message.aggregate_id, user=message.user or message.channel,
                            notification_id=message.id)

    def url(self, message: NotificationRequested, action: str = "") -> str:
        """The answer link for this notification ('' for a notice, which has no incident)."""
        if not message.aggregate_id or not self.key:
            return ""
        query = f"?action={action}" if action else ""
        return f"{self.public_url}/api/v1/answer/{self.token(message)}{query}"


class Channel:
    kind: ClassVar[str]
    supports_ack_buttons: ClassVar[bool] = False
    supports_status_updates: ClassVar[bool] = False
    # Pacing (notifier/pacing.py; values in policies.py): sends per destination (`destination_key`) and per
    # provider account, bot or sending number (`provider_key`). None: no limit of ours.
    rate_limit: ClassVar[RateLimit | None] = None
    provider_rate_limit: ClassVar[RateLimit | None] = None
    # Per-contact throttle (services/notifier/bundling.py): a burst of pages to one destination becomes one
    # message. For kinds where each message wakes or costs (SMS, voice, Pushover, email). None: off.
    bundle: ClassVar[Bundling | None] = None

    def __init__(self, session: aiohttp.ClientSession, links: ActionLinks | None = None) -> None:
        self.session = session
        self.links = links or ActionLinks("", b"")

    async def send(self, message: NotificationRequested, target: Target) -> DeliveryResult:
        raise NotImplementedError

    def endpoint(self, target: Target) -> str:
        """The URL this channel will connect to, for the private-address check before sending."""
        return target.get("url") or target.get("server")

    def destination_key(self, message: NotificationRequested, target: Target) -> str:
        """What `rate_limit` and `bundle` count per: the person's contact or the shared channel."""
        return message.channel

    def provider_key(self, target: Target) -> str:
        """What `provider_rate_limit` counts per (override: the sending number, the bot, the account)."""
        return self.kind


def subject_line(message: NotificationRequested) -> str:
    prefix = {"page": "", "escalation": "Escalated: ", "reminder": "Reminder: ", "resolved": "Resolved: ",
              "acknowledged": "Acknowledged: ", "test": "Test: ", "notice": "", "shift": ""}[message.message_kind]
    number = f"#{message.incident_number} " if message.incident_number else ""
    return f"{prefix}{number}[{message.severity.upper()}] {message.title}"


def text_body(message: NotificationRequested, limit: int = 4000) -> str:
    """Subject line, details, and the incident link, which is always kept whole."""
    link = f"\n{message.link}" if message.link else ""
    body = f"{subject_line(message)}\n{message.body}".rstrip()
    room = limit - len(link)
    if len(body) > room:
        body = body[: max(0, room - 1)] + "…"
    return body + link
