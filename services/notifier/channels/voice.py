"""Voice calls through Twilio: the page read out, with a key press to answer (4 acknowledge, 6 resolve).

The call carries its TwiML inline (`Twiml=` on the Calls API), so Twilio needs no URL of ours to start
it; only the key press comes back, to `/api/v1/callbacks/twilio/voice/<signed token>` on the API.
"""

from __future__ import annotations

from typing import ClassVar

from tocsin.events.notify import NotificationRequested
from tocsin.events.voice import prompt_twiml, say_twiml, voice_callback_url
from tocsin.notifier.channels import twilio_api
from tocsin.notifier.channels.base import Channel, DeliveryResult, Target
from tocsin.notifier.policies import PAGES, TWILIO_PER_NUMBER, Bundling, RateLimit

ANSWERABLE = ("page", "escalation", "reminder")
SPOKEN_KIND = {"page": "", "escalation": "Escalated. ", "reminder": "Reminder. ", "resolved": "Resolved. ",
               "acknowledged": "Acknowledged. ", "test": "This is a test. ", "notice": "", "shift": ""}


def spoken_text(message: NotificationRequested) -> str:
    number = f"incident {message.incident_number}, " if message.incident_number else ""
    return f"Tocsin alert. {SPOKEN_KIND[message.message_kind]}{number}{message.severity}: {message.title}."


class VoiceChannel(Channel):
    kind: ClassVar[str] = "voice"
    supports_ack_buttons: ClassVar[bool] = True    # by key press
    provider_rate_limit: ClassVar[RateLimit | None] = TWILIO_PER_NUMBER
    bundle: ClassVar[Bundling | None] = PAGES

    def provider_key(self, target: Target) -> str:
        # Twilio paces per sending number: about one message (segment) or call a second each.
        return f"twilio:{target.get('from')}"

    def twiml(self, message: NotificationRequested) -> str:
        spoken = spoken_text(message)
        if message.message_kind in ANSWERABLE and self.links.url(message):
            return prompt_twiml(spoken, voice_callback_url(self.links.public_url, self.links.token(message)))
        return say_twiml(spoken)

    async def send(self, message: NotificationRequested, target: Target) -> DeliveryResult:
        if error := twilio_api.missing(target):
            return DeliveryResult("permanent", error=error)
        to = target.fields.get("to", "")
        if not to:
            return DeliveryResult("permanent", error="no phone number to call")
        twilio = twilio_api.client(self.session, target)
        try:
            call = await twilio.calls.create_async(to=to, from_=target.provider["from"], twiml=self.twiml(message))
        except twilio_api.ERRORS as exc:
            return twilio_api.classify(exc)
        return DeliveryResult.ok(call.sid or "")
