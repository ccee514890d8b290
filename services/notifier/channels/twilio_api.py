"""What the SMS and voice channels share: a Twilio client on the notifier's guarded session, and the
classification of Twilio's error answers.

The SDK's async client is given the notifier's own aiohttp session (so the private-address guard and the
timeouts apply) and its `base_url` from `providers.twilio.base_url` (a proxy, or a local fake in tests).
"""

from __future__ import annotations

import logging

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from tocsin.notifier.channels.base import DeliveryResult, Outcome, Target

# The SDK logs every request at INFO (numbers and texts included); keep only its warnings.
_sdk_log = logging.getLogger("tocsin.notifier.twilio-sdk")
_sdk_log.setLevel(logging.WARNING)

# Twilio error codes that mean "this will never go through as asked", whatever the HTTP status.
PERMANENT_CODES = frozenset({
    21211,  # invalid 'To' number
    21408,  # permission to send to this region not enabled
    21610,  # the recipient replied STOP
    21612,  # 'To' not reachable from this 'From'
    21614,  # 'To' is not a mobile number
    21606,  # 'From' cannot send SMS
    20003,  # authentication failed
})
TRANSIENT_CODES = frozenset({20429, 20500, 20503, 30001})


def missing(target: Target) -> str:
    """Which provider settings are missing, as an error text ('' when all are there)."""
    absent = [k for k in ("account_sid", "auth_token", "from") if not target.provider.get(k)]
    return f"providers.twilio needs {', '.join(absent)}" if absent else ""


def client(session: aiohttp.ClientSession, target: Target) -> Client:
    http = AsyncTwilioHttpClient(pool_connections=False, logger=_sdk_log)
    http.session = session  # the notifier's guarded session; the SDK never closes a session it was given
    twilio = Client(target.provider["account_sid"], target.provider["auth_token"], http_client=http)
    if target.provider.get("base_url"):
        twilio.api.base_url = target.provider["base_url"].rstrip("/")
    return twilio


ERRORS = (TwilioRestException, TwilioServiceException)


def classify(exc: TwilioRestException | TwilioServiceException) -> DeliveryResult:
    """429 and 5xx are worth retrying; a 4xx (invalid number 21211, unverified sender, ...) is not."""
    outcome: Outcome
    text = exc.msg if isinstance(exc, TwilioRestException) else (exc.detail or exc.title)
    if exc.code in PERMANENT_CODES:
        outcome = "permanent"
    elif exc.status == 429 or exc.status >= 500 or exc.code in TRANSIENT_CODES:
        outcome = "retry"
    else:
        outcome = "permanent"
    code = f" (code {exc.code})" if exc.code else ""
    return DeliveryResult(outcome, error=f"Twilio HTTP {exc.status}{code}: {text}"[:300])
