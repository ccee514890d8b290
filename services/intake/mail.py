"""Mail to incident: an SMTP listener (aiosmtpd) in the intake's own event loop, on its bus and config view.

The recipient's local part is a route token or the route's `mail_alias`; the route must have
`source: email`. Anything else is refused at RCPT TO with 550, before the message is sent. Each accepted
message becomes one alert per route, published exactly as HTTP intake publishes; the answer to DATA is 250
only once JetStream has the alert, and 451 (try again later) when the bus is down, so the sending MTA
keeps the message and retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import socket
import ssl
import weakref
from collections.abc import AsyncIterator
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

import msgspec
from aiosmtpd.smtp import SMTP, Envelope, Session

from tocsin.events.alerts import Severity
from tocsin.events.config import Route
from tocsin.events.directory import Directory
from tocsin.events.observability import tracer
from tocsin.events.web import ApiError
from tocsin.intake.settings import DEFAULT_SMTP, Settings, address_of, door
from tocsin.intake.sources.base import Normalized, clip

if TYPE_CHECKING:
    from tocsin.intake.app import Intake

log = logging.getLogger("tocsin.intake.mail")
_tracer = tracer("intake")

MAX_RECIPIENTS = 10
TITLE_LIMIT = 500
DETAILS_LIMIT = 10_000
SESSION_TIMEOUT = 60.0


def find_route(directory: Directory, address: str) -> tuple[str, Route] | None:
    """The route an address names: its local part is the route's token, else its `mail_alias`."""
    local = address.rpartition("@")[0] if "@" in address else address
    if not local:
        return None
    found = directory.route_for_token(local)
    if found is not None:
        return found
    wanted = local.lower()
    for name, route in directory.config.routes.items():
        if route.mail_alias and route.mail_alias.lower() == wanted:
            return name, route
    return None


# ------------------------------------------------------------------ reading a message


class _TextOfHtml(HTMLParser):
    BLOCKS = frozenset({"p", "div", "br", "li", "tr", "table", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6",
                        "blockquote", "pre", "hr", "section", "article", "header", "footer"})
    SKIPPED = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _content(part: Message) -> str:
    try:
        return str(part.get_content())  # type: ignore[attr-defined]
    except (LookupError, ValueError, AttributeError):   # an unknown charset, a broken encoding
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def body_text(message: EmailMessage) -> str:
    """The text/plain body; else the HTML body as text; else nothing (attachments are never read)."""
    plain = message.get_body(preferencelist=("plain",))
    if plain is not None:
        return _content(plain).strip()
    html = message.get_body(preferencelist=("html",))
    return html_to_text(_content(html)) if html is not None else ""


_X_PRIORITY: dict[str, Severity] = {"1": "critical", "2": "critical", "3": "error", "4": "warning", "5": "info"}
_IMPORTANCE: dict[str, Severity] = {"high": "critical", "urgent": "critical", "normal": "error",
                                    "low": "info", "non-urgent": "info"}


def mail_severity(message: EmailMessage) -> Severity:
    """`X-Priority: 1 (Highest)` ... `5 (Lowest)`, else `Importance` / `Priority`; without them, error."""
    x_priority = str(message.get("x-priority", "")).strip()
    if x_priority[:1] in _X_PRIORITY:
        return _X_PRIORITY[x_priority[:1]]
    for header in ("importance", "priority"):
        value = str(message.get(header, "")).strip().lower()
        if value in _IMPORTANCE:
            return _IMPORTANCE[value]
    return "error"


def from_address(message: EmailMessage) -> str:
    header = message.get("from")
    addresses = getattr(header, "addresses", ())
    return str(addresses[0].addr_spec) if addresses else ""


def to_alert(message: EmailMessage, content: bytes, mail_from: str) -> Normalized:
    subject = " ".join(str(message.get("subject", "")).split())
    message_id = str(message.get("message-id", "")).strip().strip("<>").strip()
    # Without a Message-ID, a message sent again after a 451 still has the same bytes.
    dedup_key = (f"mail-{message_id[:250]}" if message_id
                 else f"mail-sha256:{hashlib.sha256(content).hexdigest()[:32]}")
    sender = from_address(message) or mail_from
    # Never the recipients: their local parts are route tokens.
    raw = {"mail_from": mail_from, "from": str(message.get("from", "")), "subject": subject,
           "date": str(message.get("date", "")), "message_id": message_id, "size": len(content)}
    return Normalized(
        dedup_key=dedup_key, status="firing", title=clip(subject, TITLE_LIMIT) or "(no subject)",
        severity=mail_severity(message), details=clip(body_text(message), DETAILS_LIMIT),
        labels={"from": sender} if sender else {}, raw=msgspec.json.encode(raw))


# ------------------------------------------------------------------ the SMTP conversation


class MailHandler:
    """aiosmtpd's handler: answers RCPT TO from the routes, and DATA once the alert is stored."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    def _routes(self, addresses: list[str]) -> dict[str, Route]:
        routes: dict[str, Route] = {}
        for address in addresses:
            found = find_route(self.intake.config.directory, address)
            if found is not None and found[1].source == "email":
                routes[found[0]] = found[1]
        return routes

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        try:
            found = find_route(self.intake.config.directory, address)
        except ApiError:
            return "451 4.3.0 Starting up; try again later"
        if found is None:
            return "550 5.1.1 No such route here"
        if found[1].source != "email":
            return "550 5.7.1 That route does not take mail (its source is not email)"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        try:
            routes = self._routes(envelope.rcpt_tos)
        except ApiError:
            return "451 4.3.0 Starting up; try again later"
        if not routes:   # the config changed between RCPT TO and now
            return "550 5.1.1 No such route here"
        if any(r.max_body_bytes and len(content) > r.max_body_bytes for r in routes.values()):
            return "552 5.3.4 Message larger than this route accepts"
        try:
            message = BytesParser(policy=policy.default).parsebytes(content)
            alert = to_alert(message, content, envelope.mail_from or "")  # type: ignore[arg-type]
        except Exception:
            log.exception("a message could not be read")
            return "554 5.6.0 Message could not be read"
        if self.intake.backlogged() is not None:
            # As HTTP's 503 backlogged: the sending server keeps the message and tries again later.
            return "451 4.3.2 Tocsin is behind on alerts; try again later"
        for name, route in routes.items():
            if self.intake.limiter.take(name, route.rate_limit or self.intake.settings.rate_per_minute):
                return "451 4.7.0 Rate limit of this route exceeded; try again later"
        with _tracer.start_as_current_span("intake.mail", attributes={
                "tocsin.source": "email", "tocsin.route": ",".join(routes)}):
            events = [event for name in routes for event in self.intake._events("email", name, [alert])]
            try:
                await self.intake._publish(events)
            except ApiError:
                return "451 4.3.0 The event bus is unavailable; try again later"
        return f"250 2.0.0 OK: {', '.join(e.aggregate_id for e in events)}"


def tls_context(cert: str, key: str) -> ssl.SSLContext | None:
    if not cert and not key:
        return None
    if not (cert and key):
        raise ValueError("set both TOCSIN_SMTP_TLS_CERT and TOCSIN_SMTP_TLS_KEY, or neither")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class MailListener:
    def __init__(self, server: asyncio.Server, sessions: weakref.WeakSet[SMTP]) -> None:
        self.server, self.sessions = server, sessions

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def address(self) -> str:
        return address_of(self.server.sockets[0].getsockname())

    async def close(self) -> None:
        self.server.close()
        for smtp in list(self.sessions):
            transport: Any = smtp.transport
            if transport is not None:
                transport.close()
        await self.server.wait_closed()


@contextlib.asynccontextmanager
async def serve(intake: Intake, settings: Settings) -> AsyncIterator[MailListener | None]:
    """The SMTP listener on `TOCSIN_SMTP` for as long as the context lasts (None when it is off)."""
    where = door(settings.smtp_listen, DEFAULT_SMTP)
    if where is None:
        yield None
        return
    # aiosmtpd logs every recipient at INFO, and a recipient here carries a route token.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    tls = tls_context(settings.smtp_tls_cert, settings.smtp_tls_key)
    handler = MailHandler(intake)
    hostname = settings.smtp_hostname or socket.gethostname()   # else aiosmtpd asks DNS on every connection
    loop = asyncio.get_running_loop()
    sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def session() -> SMTP:
        smtp = SMTP(handler, data_size_limit=settings.smtp_max_bytes, hostname=hostname, ident="Tocsin intake",
                    tls_context=tls, require_starttls=settings.smtp_require_tls, timeout=SESSION_TIMEOUT,
                    enable_SMTPUTF8=True, loop=loop)
        sessions.add(smtp)
        return smtp

    try:
        server = await loop.create_server(session, where.host, where.port)
    except OSError as exc:
        if where.explicit:
            raise OSError(exc.errno, f"cannot listen for mail on {where} (TOCSIN_SMTP): {exc.strerror}") from exc
        log.warning("mail intake is off: %s is not free (%s); set TOCSIN_SMTP to another address or off",
                    where, exc.strerror)
        yield None
        return
    listener = MailListener(server, sessions)
    log.info("mail intake on %s%s", where, " (STARTTLS)" if tls else "")
    try:
        yield listener
    finally:
        await listener.close()
