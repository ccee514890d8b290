"""How fast and how bundled a channel kind may send: the values channel classes declare.

Plain values with no behaviour, so channel modules can name them without importing the machinery
(`pacing.py` applies RateLimit, `bundling.py` applies Bundling).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    """At most `count` sends per `per` seconds, evenly spaced (no bursts: providers count per second)."""

    count: int
    per: float = 1.0

    @property
    def interval(self) -> float:
        return self.per / self.count


@dataclass(frozen=True)
class Bundling:
    """The first `threshold` pages to one destination within `window` seconds go out on their own;
    the ones after that go out together, as one message, when the window has room again."""

    threshold: int = 2
    window: float = 10.0


# Provider limits as documented by the providers, for the channel classes to declare.
TWILIO_PER_NUMBER = RateLimit(1)          # a long code sends about one message segment per second
TELEGRAM_PER_BOT = RateLimit(30)          # Bot API: about 30 messages per second per bot...
TELEGRAM_PER_CHAT = RateLimit(1)          # ...and about one per second in one chat
SLACK_PER_CHANNEL = RateLimit(1)          # chat.postMessage and incoming webhooks: about 1/s per channel
DISCORD_PER_WEBHOOK = RateLimit(5, 2.0)   # webhooks: 5 requests per 2 seconds
PAGES = Bundling()                        # SMS, voice, Pushover, email: each message wakes (or costs)
