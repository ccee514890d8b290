"""SMS through Twilio's Messages API: the page in at most 1,600 characters, link kept whole, and how to answer.

The person answers by replying `ACK 42` or `RES 42`; Twilio posts the reply to the API's SMS webhook
(`/api/v1/callbacks/twilio/sms`), which checks Twilio's signature and knows the person by the number.
"""

from __future__ import annotations

from typing import ClassVar

from tocsin.events.notify import NotificationRequested
from tocsin.notifier.channels import twilio_api
from tocsin.notifier.channels.base import Channel, DeliveryResult, Target, text_body
from tocsin.notifier.policies import PAGES, TWILIO_PER_NUMBER, Bundling, RateLimit

MAX_SMS = 1600          # Twilio's limit for one message body (it splits into segments itself)
ANSWERABLE = ("page", "escalation", "reminder")


def sms_text(message: NotificationRequested) -> str:
    hint = ""
    if message.message_kind in ANSWERABLE and message.incident_number:
        n = message.incident_number
        hint = f"\nReply ACK {n} or RES {n}"
    return text_body(message, MAX_SMS - len(hint)) + hint


class SmsChannel(Channel):
    kind: ClassVar[str] = "sms"
    supports_ack_buttons: ClassVar[bool] = True    # by reply, not by button
    provider_rate_limit: ClassVar[RateLimit | None] = TWILIO_PER_NUMBER
    bundle: ClassVar[Bundling | None] = PAGES

    def provider_key(self, target: Target) -> str:
        # Twilio paces per sending number: about one message (segment) or call a second each.
        return f"twilio:{target.get('from')}"

    async def send(self, message: NotificationRequested, target: Target) -> DeliveryResult:
        if error := twilio_api.missing(target):
            return DeliveryResult("permanent", error=error)
        to = target.fields.get("to", "")
        if not to:
            return DeliveryResult("permanent", error="no phone number to send to")
        twilio = twilio_api.client(self.session, target)
        try:
            sent = await twilio.messages.create_async(to=to, from_=target.provider["from"], body=sms_text(message))
        except twilio_api.ERRORS as exc:
            return twilio_api.classify(exc)
        return DeliveryResult.ok(sent.sid or "")
