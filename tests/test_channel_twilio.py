"""SMS and voice through Twilio: a local fake of Twilio's REST API, status/code → outcome, and both answer
paths (an SMS reply, a key press) end to end through a running stack, with Twilio's request signatures.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from provider_fakes import (
    TWILIO_SID,
    TWILIO_TOKEN,
    FakeTwilio,
    open_one_incident,
    post_signed,
    team_config,
    twilio_error,
)

from harness import StackHandle, eventually
from tocsin.events.base import utcnow
from tocsin.events.keys import env_secret_key
from tocsin.events.notify import NotificationRequested
from tocsin.events.signing import read_action_token
from tocsin.notifier.channels.base import ActionLinks, Channel, Target
from tocsin.notifier.channels.sms import SmsChannel, sms_text
from tocsin.notifier.channels.voice import VoiceChannel

LINK = "https://tocsin.example/incidents/01J0000000000000000000INC1"
KEY = b"k" * 32
ALICE_PHONE, BOB_PHONE, STRANGER = "+15550003333", "+15550004444", "+15550009999"
FROM = "+15550001111"
# The SDK itself still passes aiohttp's deprecated BasicAuth; nothing for Tocsin to change.
pytestmark = pytest.mark.filterwarnings("ignore:.*(BasicAuth|'auth' parameter).*:DeprecationWarning")


def page(**changes: Any) -> NotificationRequested:
    fields: dict[str, Any] = {
        "id": "notif-0001", "aggregate_id": "inc-0001", "at": utcnow(), "channel_kind": "sms",
        "channel": "alice/phone", "user": "alice", "destination": {"to": ALICE_PHONE},
        "incident_number": 42, "title": "Disk /var is 97% full", "body": "on db-1, mounted at /var",
        "severity": "critical", "link": LINK}
    fields.update(changes)
    return NotificationRequested(**fields)


def target(twilio: FakeTwilio, **provider: str) -> Target:
    return Target(fields={"to": ALICE_PHONE},
                  provider={"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "from": FROM,
                            "base_url": twilio.url, **provider})


@pytest_asyncio.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as fake:
        yield fake


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
        yield s


KINDS: dict[str, type[Channel]] = {"sms": SmsChannel, "voice": VoiceChannel}

# (HTTP status, Twilio error code) → outcome
TWILIO_OUTCOMES = [
    (201, None, "ok"),
    (429, 20429, "retry"),
    (500, 20500, "retry"),
    (503, 20503, "retry"),
    (502, None, "retry"),
    (400, 21211, "permanent"),     # invalid 'To' number
    (400, 21610, "permanent"),     # the recipient replied STOP
    (400, 21408, "permanent"),     # region not enabled
    (401, 20003, "permanent"),     # authentication
    (404, 20404, "permanent"),
]


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize(("status", "code", "expected"), TWILIO_OUTCOMES)
async def test_twilio_answer_classifies_the_delivery(kind, status, code, expected, twilio, session):
    if status != 201:
        if code is None:
            twilio.answers = [lambda _, s=status: web.Response(status=s, text="<html>Bad gateway</html>")]
        else:
            twilio.answers = [lambda _, s=status, c=code: twilio_error(s, c, f"error {c}")]

    result = await KINDS[kind](session, ActionLinks("https://tocsin.example", KEY)).send(
        page(channel_kind=kind), target(twilio))

    assert result.outcome == expected, result
    assert len(twilio.requests) == 1, "a channel classifies; it never retries by itself"
    if expected == "ok":
        assert result.provider_id.startswith("SM" if kind == "sms" else "CA")
    else:
        assert result.error.startswith(f"Twilio HTTP {status}")
        if code:
            assert f"code {code}" in result.error


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_a_wrong_auth_token_is_permanent_and_not_echoed(kind, twilio, session):
    result = await KINDS[kind](session).send(page(channel_kind=kind),
                                             target(twilio, auth_token="not-the-token-9a8b"))
    assert (result.outcome, "code 20003" in result.error) == ("permanent", True)
    assert "not-the-token-9a8b" not in result.error


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("missing", ["account_sid", "auth_token", "from"])
async def test_missing_provider_settings_are_permanent(kind, missing, twilio, session):
    t = target(twilio)
    provider = {k: v for k, v in t.provider.items() if k != missing}
    result = await KINDS[kind](session).send(page(channel_kind=kind), Target(fields=t.fields, provider=provider))
    assert (result.outcome, result.error) == ("permanent", f"providers.twilio needs {missing}")
    assert twilio.requests == []


# ------------------------------------------------------------------ wire format


async def test_sms_wire_format(twilio, session):
    result = await SmsChannel(session).send(page(), target(twilio))

    assert result.outcome == "ok"
    [request] = twilio.requests
    assert (request.method, request.path) == ("POST", f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
    form = FakeTwilio.form(request)
    assert (form["To"], form["From"]) == (ALICE_PHONE, FROM)
    assert form["Body"] == ("#42 [CRITICAL] Disk /var is 97% full\non db-1, mounted at /var\n"
                            f"{LINK}\nReply ACK 42 or RES 42")


@pytest.mark.parametrize("changes", [{"body": "x" * 5000}, {"title": "t" * 3000, "body": "y" * 3000}])
def test_sms_text_fits_and_keeps_link_and_answer_hint(changes):
    text = sms_text(page(**changes))
    assert len(text) <= 1600
    assert text.endswith(f"{LINK}\nReply ACK 42 or RES 42")


@pytest.mark.parametrize("kind", ["resolved", "acknowledged", "notice"])
def test_sms_asks_for_an_answer_only_where_one_makes_sense(kind):
    assert "Reply ACK" not in sms_text(page(message_kind=kind))


async def test_voice_call_carries_twiml_with_a_signed_gather(twilio, session):
    links = ActionLinks("https://tocsin.example", KEY)
    result = await VoiceChannel(session, links).send(page(channel_kind="voice"), target(twilio))

    assert result.outcome == "ok"
    [request] = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Calls.json"
    form = FakeTwilio.form(request)
    assert (form["To"], form["From"]) == (ALICE_PHONE, FROM)
    twiml = ET.fromstring(form["Twiml"])
    gathers = twiml.findall("Gather")
    assert gathers and all(g.get("numDigits") == "1" and g.get("method") == "POST" for g in gathers)
    action = gathers[0].get("action")
    assert action.startswith("https://tocsin.example/api/v1/callbacks/twilio/voice/")
    token = action.rsplit("/", 1)[1]
    assert read_action_token(KEY, token)[:2] == ("inc-0001", "alice")
    spoken = gathers[0].find("Say").text
    assert "incident 42" in spoken and "Disk /var is 97% full" in spoken
    assert "Press 4 to acknowledge. Press 6 to resolve." in spoken


async def test_voice_for_a_resolved_incident_only_speaks(twilio, session):
    await VoiceChannel(session, ActionLinks("https://tocsin.example", KEY)).send(
        page(channel_kind="voice", message_kind="resolved"), target(twilio))
    twiml = ET.fromstring(FakeTwilio.form(twilio.requests[0])["Twiml"])
    assert twiml.findall("Gather") == []
    assert "Resolved." in twiml.find("Say").text


# ------------------------------------------------------------------ end to end: SMS reply


def twilio_providers(fake: FakeTwilio) -> str:
    return (f'  twilio: {{account_sid: {TWILIO_SID}, auth_token: "{TWILIO_TOKEN}", from: "{FROM}", '
            f'base_url: "{fake.url}"}}')


BOB = f'  bob: {{phone: "{BOB_PHONE}", contacts: {{phone: {{type: sms}}}}}}'


async def start_sms(stack: StackHandle, fake: FakeTwilio, fixtures_dir: Any,
                    extra_users: str = BOB) -> dict[str, Any]:
    await stack.start(team_config(twilio_providers(fake), "{phone: {type: sms}}", extra_users=extra_users))
    incident = await open_one_incident(stack, fixtures_dir)
    await fake.wait_for(1)
    return incident


def sms_params(body: str, sender: str = ALICE_PHONE, **extra: str) -> dict[str, str]:
    return {"MessageSid": "SM" + "f" * 32, "AccountSid": TWILIO_SID, "From": sender, "To": FROM, "Body": body,
            "NumMedia": "0", **extra}


async def status_of(stack: StackHandle, incident_id: str) -> str:
    return str((await stack.incident(incident_id))["status"])


async def reach(stack: StackHandle, incident_id: str, status: str) -> dict[str, Any]:
    async def check() -> Any:
        detail = await stack.incident(incident_id)
        return detail if detail["status"] == status else None
    return await eventually(check)  # type: ignore[no-any-return]


def message_of(twiml: str) -> str:
    return ET.fromstring(twiml).find("Message").text or ""


async def test_sms_reply_acknowledges_then_resolves_as_the_sender(stack, twilio, fixtures_dir):
    incident = await start_sms(stack, twilio, fixtures_dir)
    n = incident["number"]
    form = FakeTwilio.form(twilio.requests[0])
    assert form["To"] == ALICE_PHONE, "a person's sms contact defaults to their phone"
    assert form["Body"].endswith(f"Reply ACK {n} or RES {n}")
    url = f"{stack.url}/api/v1/callbacks/twilio/sms"

    status, reply = await post_signed(stack.session, url, sms_params(f"ack {n}"))
    assert status == 200, reply
    assert message_of(reply).startswith(f"#{n} acknowledged by alice")
    assert (await reach(stack, incident["id"], "acknowledged"))["acknowledged_by"] == "alice"

    status, reply = await post_signed(stack.session, url, sms_params(f"RES #{n}"))
    assert message_of(reply).startswith(f"#{n} resolved by alice")
    assert (await reach(stack, incident["id"], "resolved"))["resolved_by"] == "alice"


@pytest.mark.parametrize(("body", "answer"), [
    ("hello", "Not understood. Reply ACK 42"),
    ("ACK", "Not understood."),
    ("A 1", "Not understood."),
    ("ACK 99", "There is no incident #99; nothing was changed."),
])
async def test_sms_replies_that_change_nothing(body, answer, stack, twilio, fixtures_dir):
    incident = await start_sms(stack, twilio, fixtures_dir)
    status, reply = await post_signed(stack.session, f"{stack.url}/api/v1/callbacks/twilio/sms", sms_params(body))
    assert status == 200
    assert message_of(reply).startswith(answer)
    await asyncio.sleep(0.2)
    assert await status_of(stack, incident["id"]) == "triggered"


async def test_sms_from_an_unknown_number_changes_nothing(stack, twilio, fixtures_dir):
    incident = await start_sms(stack, twilio, fixtures_dir)
    # Naming alice in the body does not help: only the number Twilio vouches for says who answers.
    params = sms_params(f"ACK {incident['number']}", sender=STRANGER, user="alice", Author=ALICE_PHONE)
    status, reply = await post_signed(stack.session, f"{stack.url}/api/v1/callbacks/twilio/sms", params)
    assert status == 200
    assert message_of(reply) == "This number is not known to Tocsin, so nothing was changed."
    await asyncio.sleep(0.2)
    assert await status_of(stack, incident["id"]) == "triggered"


async def test_sms_from_a_number_two_people_share_changes_nothing(stack, twilio, fixtures_dir):
    shared = f'  bob: {{phone: "{ALICE_PHONE}", contacts: {{phone: {{type: sms}}}}}}'
    incident = await start_sms(stack, twilio, fixtures_dir, extra_users=shared)
    status, reply = await post_signed(stack.session, f"{stack.url}/api/v1/callbacks/twilio/sms",
                                      sms_params(f"ACK {incident['number']}"))
    assert status == 200
    assert "more than one person" in message_of(reply)
    assert await status_of(stack, incident["id"]) == "triggered"


async def test_sms_from_another_person_acts_as_that_person(stack, twilio, fixtures_dir):
    incident = await start_sms(stack, twilio, fixtures_dir)
    status, reply = await post_signed(stack.session, f"{stack.url}/api/v1/callbacks/twilio/sms",
                                      sms_params(f"ACK {incident['number']}", sender=BOB_PHONE))
    assert status == 200
    assert message_of(reply).endswith(f"acknowledged by bob: {incident['title']}")
    assert (await reach(stack, incident["id"], "acknowledged"))["acknowledged_by"] == "bob"


@pytest.mark.parametrize("forgery", ["no signature", "other token", "other url", "tampered body",
                                     "other account"])
async def test_sms_without_a_valid_twilio_signature_is_refused(forgery, stack, twilio, fixtures_dir):
    incident = await start_sms(stack, twilio, fixtures_dir)
    url = f"{stack.url}/api/v1/callbacks/twilio/sms"
    params = sms_params(f"ACK {incident['number']}")
    kwargs: dict[str, Any] = {
        "no signature": {"signature": ""},
        "other token": {"token": "some-other-auth-token"},
        "other url": {"signed_url": f"{stack.url}/api/v1/callbacks/twilio/other"},
    }.get(forgery, {})
    if forgery == "tampered body":
        # Signed for bob's number, sent with alice's.
        from twilio.request_validator import RequestValidator
        kwargs = {"signature": RequestValidator(TWILIO_TOKEN).compute_signature(
            url, sms_params(f"ACK {incident['number']}", sender=BOB_PHONE))}
    if forgery == "other account":
        params["AccountSid"] = "AC" + "9" * 32
    status, body = await post_signed(stack.session, url, params, **kwargs)
    assert status == 403, body
    await asyncio.sleep(0.2)
    assert await status_of(stack, incident["id"]) == "triggered"


async def test_sms_door_is_closed_without_a_twilio_account(stack, fixtures_dir):
    await stack.start(team_config("  {}", "{out: {type: log}}"))
    status, body = await post_signed(stack.session, f"{stack.url}/api/v1/callbacks/twilio/sms", sms_params("ACK 1"))
    assert status == 404
    assert "not_configured" in body


# ------------------------------------------------------------------ end to end: voice key press


async def start_voice(stack: StackHandle, fake: FakeTwilio, fixtures_dir: Any) -> tuple[dict[str, Any], str]:
    await stack.start(team_config(twilio_providers(fake), "{call: {type: voice}}"))
    incident = await open_one_incident(stack, fixtures_dir)
    [call] = await fake.wait_for(1)
    action = ET.fromstring(FakeTwilio.form(call)["Twiml"]).find("Gather").get("action")
    assert action.startswith(f"{stack.url}/api/v1/callbacks/twilio/voice/")
    return incident, action


def key_params(digits: str, **extra: str) -> dict[str, str]:
    return {"CallSid": "CA" + "e" * 32, "AccountSid": TWILIO_SID, "From": FROM, "To": ALICE_PHONE,
            "Digits": digits, "CallStatus": "in-progress", **extra}


async def test_key_press_acknowledges_as_the_person_called(stack, twilio, fixtures_dir):
    incident, action = await start_voice(stack, twilio, fixtures_dir)
    _, user, _ = read_action_token(env_secret_key(), action.rsplit("/", 1)[1])
    assert user == "alice"

    # A wrong key repeats the prompt, with the same signed action, and changes nothing.
    status, twiml = await post_signed(stack.session, action, key_params("9"))
    assert status == 200
    gathers = ET.fromstring(twiml).findall("Gather")
    assert gathers and gathers[0].get("action") == action
    assert "That key does nothing" in gathers[0].find("Say").text
    assert await status_of(stack, incident["id"]) == "triggered"

    # Whatever else the body says, the token says who answers.
    status, twiml = await post_signed(stack.session, action, key_params("4", To=BOB_PHONE, user="bob"))
    assert status == 200
    assert ET.fromstring(twiml).find("Say").text == f"Incident {incident['number']} is now acknowledged. Goodbye."
    assert (await reach(stack, incident["id"], "acknowledged"))["acknowledged_by"] == "alice"

    status, twiml = await post_signed(stack.session, action, key_params("6"))
    assert "is now resolved" in ET.fromstring(twiml).find("Say").text
    assert (await reach(stack, incident["id"], "resolved"))["resolved_by"] == "alice"


async def test_key_press_without_a_valid_signature_or_token_is_refused(stack, twilio, fixtures_dir):
    incident, action = await start_voice(stack, twilio, fixtures_dir)
    status, _ = await post_signed(stack.session, action, key_params("4"), token="some-other-auth-token")
    assert status == 403
    # Twilio's signature over an altered action URL is genuine, but the token in it is not.
    token = action.rsplit("/", 1)[1]
    altered = action.replace(token, token[:-3] + ("xyz" if not token.endswith("xyz") else "abc"))
    status, body = await post_signed(stack.session, altered, key_params("4"))
    assert status == 403 and "bad_link" in body
    await asyncio.sleep(0.2)
    assert await status_of(stack, incident["id"]) == "triggered"


# ------------------------------------------------------------------ the notifier's guard applies to base_url


@pytest.mark.parametrize("allow", [False, True])
async def test_twilio_base_url_obeys_allow_private_networks(allow, twilio):
    import contextlib

    from tocsin.events.config import Config, Security
    from tocsin.events.configbus import ConfigWatcher
    from tocsin.events.directory import Directory
    from tocsin.notifier.app import Notifier
    from tocsin.notifier.netguard import GuardedResolver
    from tocsin.notifier.settings import Settings

    config = Config(security=Security(allow_private_networks=allow), providers={"twilio": {
        "account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "from": FROM, "base_url": twilio.url}})
    watcher = ConfigWatcher(bus=None)  # type: ignore[arg-type]  # not started: the config is set by hand
    watcher.directory = Directory.build(config)
    notifier = Notifier(Settings(send_deadline=0.5), bus=None, config=watcher)  # type: ignore[arg-type]
    async with contextlib.AsyncExitStack() as stack:
        notifier._sessions = {a: await stack.enter_async_context(aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=GuardedResolver(a)))) for a in (False, True)}
        result, tries = await notifier._send_with_retries(page(channel="c", user=""), None)
    if allow:
        assert result.outcome == "ok" and len(twilio.requests) == 1
    else:
        assert (result.outcome, tries) == ("permanent", 1)
        assert "private address 127.0.0.1" in result.error
        assert twilio.requests == []


async def test_sms_reply_to_a_resolved_incident_says_why_nothing_changed(stack, twilio, fixtures_dir):
    incident = await start_sms(stack, twilio, fixtures_dir)
    n, url = incident["number"], f"{stack.url}/api/v1/callbacks/twilio/sms"
    _, reply = await post_signed(stack.session, url, sms_params(f"RES {n}"))
    assert message_of(reply).startswith(f"#{n} resolved by alice")
    status, reply = await post_signed(stack.session, url, sms_params(f"ACK {n}", sender=BOB_PHONE))
    assert status == 200
    assert message_of(reply).startswith(f"#{n} was not changed: ")
    detail = await reach(stack, incident["id"], "resolved")
    assert (detail["resolved_by"], detail["acknowledged_by"]) == ("alice", None)
