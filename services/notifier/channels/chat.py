"""What the chat and push channels share: which messages carry answer buttons, colours, and cutting text."""

from __future__ import annotations

from tocsin.events.notify import NotificationRequested

# Messages someone can still answer: the incident is open and the message asks for attention.
ANSWERABLE = ("page", "escalation", "reminder")
# Severity colours (Mattermost/Slack attachment hex, Discord integer), and green once resolved.
COLOURS = {"critical": "#d32f2f", "error": "#f57c00", "warning": "#fbc02d", "info": "#1976d2"}
RESOLVED_COLOUR = "#388e3c"


def answerable(message: NotificationRequested) -> bool:
    return message.message_kind in ANSWERABLE and bool(message.aggregate_id)


def colour(message: NotificationRequested) -> str:
    if message.message_kind == "resolved" or message.status == "resolved":
        return RESOLVED_COLOUR
    return COLOURS.get(message.severity, "#757575")


def status_text(message: NotificationRequested) -> str:
    """The incident's status as a person reads it: `resolved by alice`, or just `triggered`."""
    return f"{message.status} by {message.by}" if message.by else message.status


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def clip_utf16(text: str, limit: int) -> str:
    """At most `limit` UTF-16 code units (how Telegram counts), marked with an ellipsis when cut."""
    if len(text.encode("utf-16-le")) // 2 <= limit:
        return text
    out, used = [], 1
    for ch in text:
        size = 2 if ord(ch) > 0xFFFF else 1
        if used + size > limit:
            break
        out.append(ch)
        used += size
    return "".join(out) + "…"
