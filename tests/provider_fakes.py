"""Local fakes of the delivery providers, each speaking its provider's real wire format.

- `SmtpSink`: a real SMTP server (aiosmtpd) in this process, optionally with STARTTLS or implicit TLS and
  AUTH, that records each message and can be told which reply code to give at MAIL, RCPT or DATA.
- `FakeTwilio`: Twilio's REST API for Messages and Calls (form-encoded POSTs under
  `/2010-04-01/Accounts/{sid}/`, HTTP basic auth with the account SID and auth token, JSON answers with a
  `sid`, errors as `{"code", "message", "more_info", "status"}`), and a `post_signed` that calls back the
  way Twilio does (form body, `X-Twilio-Signature`).
- `FakePushover`: `POST /1/messages.json` and `GET /1/receipts/{receipt}.json` as the Pushover API answers.
- `FakeSignalDaemon`: signal-cli's JSON-RPC HTTP endpoint `POST /api/v1/rpc`.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import itertools
import json
import ssl
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twilio.request_validator import RequestValidator

from harness import FakeProvider, Received, free_port

# Distinctive secrets: finding one anywhere can only mean a leak.
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "twilio-auth-token-7Hq2ZpR4"
SMTP_USER, SMTP_PASSWORD = "tocsin@example.com", "smtp-password-Xk29fLq8"
PUSHOVER_TOKEN = "azGDORePK8gMaC0QOYAMyEEuzJnyUi"
PUSHOVER_USER = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"


# ------------------------------------------------------------------ SMTP


def self_signed_cert(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate for `host` (also its own CA) and its key, written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class SmtpSink:
    """An SMTP server on loopback. `replies[stage]` (stage: MAIL, RCPT, DATA) is a list of reply lines
    given one command at a time instead of accepting; `messages` holds what was accepted."""

    tls: ssl.SSLContext | None = None
    mode: str = "plain"            # plain | starttls | tls
    login: tuple[str, str] | None = None
    port: int = field(default_factory=free_port)
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)
    replies: dict[str, list[str]] = field(default_factory=dict)
    authenticated: list[str] = field(default_factory=list)

    def start(self) -> SmtpSink:
        kwargs: dict[str, Any] = {}
        if self.mode == "starttls":
            kwargs |= {"tls_context": self.tls, "require_starttls": True}
        elif self.mode == "tls":
            kwargs |= {"ssl_context": self.tls}
        if self.login:
            kwargs |= {"auth_required": True, "authenticator": self._authenticate,
                       "auth_require_tls": self.mode == "starttls"}  # implicit TLS: aiosmtpd cannot tell
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def _authenticate(self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str,
                      data: Any) -> AuthResult:
        if isinstance(data, LoginPassword) and self.login and (
                data.login.decode(), data.password.decode()) == self.login:
            self.authenticated.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def _scripted(self, stage: str) -> str | None:
        queue = self.replies.get(stage) or []
        return queue.pop(0) if queue else None

    async def handle_MAIL(self, server: SMTPServer, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        if reply := self._scripted("MAIL"):
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTPServer, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        if reply := self._scripted("RCPT"):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        if reply := self._scripted("DATA"):
            return reply
        self.envelopes.append(envelope)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


def parts(mail: EmailMessage) -> tuple[str, str]:
    """The text and HTML bodies of a multipart/alternative mail."""
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None, mail
    return text.get_content(), html.get_content()


# ------------------------------------------------------------------ Twilio


def twilio_error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                              "status": status}, status=status)


class FakeTwilio(FakeProvider):
    """Twilio's Messages and Calls resources. Queue errors in `answers` (e.g. `lambda _: twilio_error(...)`)."""

    def __init__(self, sid: str = TWILIO_SID, token: str = TWILIO_TOKEN) -> None:
        super().__init__("twilio")
        self.sid, self.token = sid, token
        self.default = self._create
        self._ids = itertools.count(1)
        self.answers: list[Any] = []

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        expected = "Basic " + base64.b64encode(f"{self.sid}:{self.token}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            await request.read()
            return twilio_error(401, 20003, "Authenticate")
        return await super()._handle(request)

    def _create(self, received: Received) -> web.Response:
        base = f"/2010-04-01/Accounts/{self.sid}/"
        resource = received.path.removeprefix(base)
        if received.method != "POST" or resource not in ("Messages.json", "Calls.json"):
            return twilio_error(404, 20404, f"The requested resource {received.path} was not found")
        form = self.form(received)
        if not form.get("To", "").startswith("+"):
            return twilio_error(400, 21211, f"The 'To' number {form.get('To')} is not a valid phone number.")
        prefix = "SM" if resource == "Messages.json" else "CA"
        sid = f"{prefix}{next(self._ids):032x}"
        return web.json_response({"sid": sid, "account_sid": self.sid, "to": form["To"], "from": form.get("From"),
                                  "status": "queued", "uri": f"{base}{resource[:-5]}/{sid}.json"}, status=201)

    @staticmethod
    def form(received: Received) -> dict[str, str]:
        assert received.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
        return dict(parse_qsl(received.body.decode(), keep_blank_values=True))


async def post_signed(session: aiohttp.ClientSession, url: str, params: dict[str, str], *,
                      token: str = TWILIO_TOKEN, signed_url: str | None = None,
                      signature: str | None = None) -> tuple[int, str]:
    """POST a webhook as Twilio does: form-encoded, signed over the URL and the sorted parameters."""
    sig = signature if signature is not None else RequestValidator(token).compute_signature(
        signed_url or url, params)
    headers = {"X-Twilio-Signature": sig, "Content-Type": "application/x-www-form-urlencoded",
               "User-Agent": "TwilioProxy/1.1"}
    async with session.post(url, data=params, headers=headers) as resp:
        return resp.status, await resp.text()


def public_path(url: str) -> str:
    parts_ = urlsplit(url)
    return parts_.path + (f"?{parts_.query}" if parts_.query else "")


# ------------------------------------------------------------------ Pushover


class FakePushover(FakeProvider):
    def __init__(self, token: str = PUSHOVER_TOKEN, users: tuple[str, ...] = (PUSHOVER_USER,)) -> None:
        super().__init__("pushover")
        self.token, self.users = token, users
        self.receipts: dict[str, dict[str, Any]] = {}
        self.default = self._answer
        self._ids = itertools.count(1)

    def _answer(self, received: Received) -> web.Response:
        request_id = f"req-{next(self._ids)}"
        if received.method == "GET" and received.path.startswith("/1/receipts/"):
            receipt = received.path.removeprefix("/1/receipts/").removesuffix(".json")
            if receipt not in self.receipts:
                return web.json_response({"receipt": "not found", "errors": ["receipt not found; may be invalid "
                                          "or expired"], "status": 0, "request": request_id}, status=404)
            return web.json_response({"status": 1, "request": request_id, **self.receipts[receipt]})
        if (received.method, received.path) != ("POST", "/1/messages.json"):
            return web.json_response({"errors": ["not found"], "status": 0}, status=404)
        form = dict(parse_qsl(received.body.decode(), keep_blank_values=True))
        if form.get("token") != self.token:
            return web.json_response({"token": "invalid", "errors": ["application token is invalid"],
                                      "status": 0, "request": request_id}, status=400)
        if form.get("user") not in self.users:
            return web.json_response({"user": "invalid", "errors": [
                "user identifier is not a valid user, group, or subscribed user key"], "status": 0,
                "request": request_id}, status=400)
        answer: dict[str, Any] = {"status": 1, "request": request_id}
        if form.get("priority") == "2":
            if not form.get("retry") or not form.get("expire"):
                return web.json_response({"errors": ["retry and expire are required for emergency priority"],
                                          "status": 0, "request": request_id}, status=400)
            receipt = f"r{len(self.receipts) + 1:029d}"
            self.receipts[receipt] = {"acknowledged": 0, "acknowledged_at": 0, "acknowledged_by": "",
                                      "expired": 0, "callback_url": form.get("callback", "")}
            answer["receipt"] = receipt
        return web.json_response(answer)

    def acknowledge(self, receipt: str, user: str = PUSHOVER_USER) -> None:
        self.receipts[receipt] |= {"acknowledged": 1, "acknowledged_at": 1767225600, "acknowledged_by": user}


# ------------------------------------------------------------------ signal-cli


class FakeSignalDaemon(FakeProvider):
    """signal-cli `daemon --http`: `answers` may queue JSON-RPC errors via `rpc_error(code, message)`."""

    def __init__(self) -> None:
        super().__init__("signal")
        self.default = self._answer

    def _answer(self, received: Received) -> web.Response:
        if (received.method, received.path) != ("POST", "/api/v1/rpc"):
            return web.Response(status=404)
        call = received.json()
        return web.json_response({"jsonrpc": "2.0", "result": {"timestamp": 1767225600000 + len(self.requests),
                                  "results": [{"type": "SUCCESS"}]}, "id": call.get("id")})


def rpc_error(code: int, message: str) -> Any:
    def answer(received: Received) -> web.Response:
        return web.json_response({"jsonrpc": "2.0", "error": {"code": code, "message": message, "data": None},
                                  "id": json.loads(received.body).get("id")})
    return answer


# ------------------------------------------------------------------ a stack with one open incident

ROUTE_TOKEN = "route-token-channels-0001"


def team_config(providers: str, contacts: str, *, phone: str = "+15550003333", extra_users: str = "") -> str:
    """One team, alice on call, reached through `contacts`; Alertmanager route ROUTE_TOKEN."""
    return f"""
timezone: UTC
security: {{allow_private_networks: true}}
providers:
{providers}
users:
  alice:
    email: alice@example.com
    phone: "{phone}"
    contacts: {contacts}
{extra_users}
teams:
  infra:
    members: [alice]
    rotations: {{primary: {{members: [alice], shift: 1w, start: "2026-01-05T09:00"}}}}
    escalation: {{steps: [{{notify: ["rotation:primary"], wait: 1h}}]}}
routes:
  prod: {{source: alertmanager, team: infra, token: {ROUTE_TOKEN}}}
"""


async def open_one_incident(stack: Any, fixtures_dir: Path) -> dict[str, Any]:
    """Fire one Alertmanager alert; return the incident once the API shows it."""
    from harness import eventually
    body = json.loads((fixtures_dir / "alertmanager" / "group-firing-2.json").read_text())
    body["alerts"] = body["alerts"][:1]
    status, answer = await stack.post_alert("alertmanager", body, ROUTE_TOKEN)
    assert status == 202, answer

    async def listed() -> Any:
        items = await stack.incidents()
        return items[0] if items else None
    return await eventually(listed)  # type: ignore[no-any-return]
