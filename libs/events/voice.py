"""The spoken page: TwiML that reads the incident and asks for one key (4 acknowledge, 6 resolve).

Shared by the notifier (the call's first TwiML) and the API (the key-press callback repeats the prompt after
a wrong key), so both say the same thing. The Gather's `action` carries a signed action token in its path:
the callback acts as the person called, and Twilio signs the whole URL (`X-Twilio-Signature`).
"""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

VOICE_CALLBACK = "/api/v1/callbacks/twilio/voice/{token}"
KEYS = {"4": "acknowledge", "6": "resolve"}
MAX_SPOKEN = 600      # characters of the title read out: a page is a wake-up call, not an essay
PROMPT = "Press 4 to acknowledge. Press 6 to resolve."


def voice_callback_url(public_url: str, token: str) -> str:
    return public_url.rstrip("/") + VOICE_CALLBACK.format(token=token)


def prompt_twiml(spoken: str, action_url: str, *, rounds: int = 2) -> str:
    """Say `spoken`, then ask for a key; ask again once if nothing was pressed, then hang up."""
    response = VoiceResponse()
    for i in range(rounds):
        gather = response.gather(num_digits=1, action=action_url, method="POST", timeout=8,
                                 action_on_empty_result=False)
        gather.say(f"{spoken[:MAX_SPOKEN]} {PROMPT}" if i == 0 else PROMPT)
    response.say("No key was pressed. Goodbye.")
    return str(response)


def say_twiml(spoken: str) -> str:
    response = VoiceResponse()
    response.say(spoken[:MAX_SPOKEN])
    return str(response)
