"""Email through an SMTP relay (aiosmtplib): a text and an HTML part, the incident link, and answer links.

The relay comes from `providers.smtp`: STARTTLS (`starttls: true`, the default on port 587), TLS from the
first byte (`tls: true`, port 465) or plain (both false, for a relay on the same host), with optional
login. Acknowledge/Resolve are signed links to the API's confirm page, whose button POSTs: a mail scanner
that follows every link in a message cannot acknowledge anything.

SMTP answers are classified by their reply code: 4xx is transient (retry), 5xx is permanent; a connection
that fails or drops is retried.
"""

from __future__ import annotations

import html
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import ClassVar

import aiosmtplib

from tocsin.events.notify import NotificationRequested
from tocsin.notifier.channels.base import Channel, DeliveryResult, Outcome, Target, subject_line
from tocsin.notifier.policies import PAGES, Bundling

ANSWERABLE = ("page", "escalation", "reminder")
MAX_BODY = 100_000


def _flag(value: str, default: bool) -> bool:
    # Provider values reach the channel as text ("True", "false", ...).
    return default if value == "" else value.strip().lower() in ("true", "1", "yes")


def smtp_outcome(code: int) -> Outcome:
    """4xx: the server asks to come back later; 5xx (and anything odd): it will say the same again."""
    return "retry" if 400 <= code < 500 else "permanent"


class EmailChannel(Channel):
    kind: ClassVar[str] = "email"
    supports_ack_buttons: ClassVar[bool] = True
    bundle: ClassVar[Bundling | None] = PAGES

    def compose(self, message: NotificationRequested, target: Target) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = subject_line(message)[:250]
        mail["From"] = target.provider.get("from", "")
        mail["To"] = ", ".join(recipients(target))
        mail["Date"] = formatdate(localtime=False)
        domain = mail["From"].rpartition("@")[2] or "tocsin.invalid"
        mail["Message-ID"] = make_msgid(idstring=message.id[:40], domain=domain)
        if message.aggregate_id:
            # Every mail about one incident lands in one thread.
            thread = f"<incident-{message.aggregate_id}@{domain}>"
            mail["References"] = thread
            mail["In-Reply-To"] = thread
        mail["Auto-Submitted"] = "auto-generated"
        mail["X-Tocsin-Notification-Id"] = message.id
        links = self._answer_links(message)
        mail.set_content(text_part(message, links))
        mail.add_alternative(html_part(message, links), subtype="html")
        return mail

    def _answer_links(self, message: NotificationRequested) -> list[tuple[str, str]]:
        if message.message_kind not in ANSWERABLE or not self.links.url(message):
            return []
        return [(label, self.links.url(message, action))
                for action, label in (("acknowledge", "Acknowledge"), ("resolve", "Resolve"))]

    async def send(self, message: NotificationRequested, target: Target) -> DeliveryResult:
        provider = target.provider
        to = recipients(target)
        if not provider.get("host") or not provider.get("from"):
            return DeliveryResult("permanent", error="providers.smtp needs host and from")
        if not to:
            return DeliveryResult("permanent", error="no recipient address")
        mail = self.compose(message, target)
        implicit_tls = _flag(provider.get("tls", ""), False)
        starttls = _flag(provider.get("starttls", ""), not implicit_tls)
        context = None
        if implicit_tls or starttls:
            try:
                context = ssl.create_default_context(cafile=provider.get("ca_file") or None)
            except (OSError, ssl.SSLError) as exc:
                return DeliveryResult("permanent", error=f"providers.smtp.ca_file cannot be used: {exc}"[:300])
        try:
            await aiosmtplib.send(
                mail, hostname=provider["host"], port=int(provider.get("port") or (465 if implicit_tls else 587)),
                username=provider.get("username") or None, password=provider.get("password") or None,
                use_tls=implicit_tls, start_tls=starttls if not implicit_tls else False, tls_context=context,
                timeout=float(provider.get("timeout") or 10))
        except aiosmtplib.SMTPRecipientsRefused as exc:
            # Every recipient refused: retry only if each refusal was transient.
            codes = [r.code for r in exc.recipients]
            outcome: Outcome = "retry" if codes and all(smtp_outcome(c) == "retry" for c in codes) else "permanent"
            detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            return DeliveryResult(outcome, error=f"SMTP recipients refused: {detail}"[:300])
        except aiosmtplib.SMTPResponseException as exc:
            return DeliveryResult(smtp_outcome(exc.code),
                                  error=f"SMTP {exc.code}: {exc.message}"[:300])
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError,
                OSError) as exc:
            # A certificate that does not verify will not verify on the next try either.
            outcome = "permanent" if _certificate_refused(exc) else "retry"
            return DeliveryResult(outcome, error=f"SMTP connection: {type(exc).__name__}: {exc}"[:300])
        except aiosmtplib.SMTPException as exc:
            # E.g. the server does not offer STARTTLS or AUTH: the configuration must change first.
            return DeliveryResult("permanent", error=f"SMTP: {type(exc).__name__}: {exc}"[:300])
        return DeliveryResult.ok(str(mail["Message-ID"]))


def _certificate_refused(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def recipients(target: Target) -> list[str]:
    return [a.strip() for a in target.fields.get("to", "").split(",") if a.strip()]


def text_part(message: NotificationRequested, links: list[tuple[str, str]]) -> str:
    lines = [subject_line(message), ""]
    if message.body:
        lines += [message.body[:MAX_BODY], ""]
    if message.link:
        lines.append(f"Open the incident: {message.link}")
    lines += [f"{label}: {url}" for label, url in links]
    if links:
        lines += ["", "Each link opens a page that asks you to confirm."]
    return "\n".join(lines).rstrip() + "\n"


def html_part(message: NotificationRequested, links: list[tuple[str, str]]) -> str:
    colour = {"critical": "#b00020", "error": "#c2410c", "warning": "#a16207"}.get(message.severity, "#1d4ed8")
    buttons = "".join(
        f'<a href="{html.escape(url)}" style="display:inline-block;padding:8px 16px;margin:0 8px 8px 0;'
        f'background:#111;color:#fff;text-decoration:none;border-radius:4px">{html.escape(label)}</a>'
        for label, url in ([("Open incident", message.link)] if message.link else []) + links)
    body = (f'<pre style="white-space:pre-wrap;font:14px ui-monospace,monospace">'
            f"{html.escape(message.body[:MAX_BODY])}</pre>") if message.body else ""
    return (f"<!doctype html><html><body style=\"font:15px system-ui,sans-serif\">"
            f'<h2 style="color:{colour};margin:0 0 12px">{html.escape(subject_line(message))}</h2>'
            f"{body}<p>{buttons}</p></body></html>")
