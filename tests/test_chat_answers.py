"""Answers from chat buttons and push actions, end to end through a running stack: the page goes out to a fake
provider, the button is pressed (the provider's callback, as the provider sends it), the incident is
acknowledged or resolved by the right person, and the message is updated. Forged and replayed callbacks are
refused and change nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from chatfakes import (
    BOT_TOKEN,
    MM_BOT_TOKEN,
    SLACK_HOOK_PATH,
    SLACK_SIGNING_SECRET,
    Browser,
    new_vapid_key,
    verify_vapid,
)

from harness import FakeProvider, Received, StackHandle, eventually
from tocsin.api.callbacks_mattermost import destination
from tocsin.api.chat_answers import who_pressed
from tocsin.events import deliveries
from tocsin.events.chatbuttons import read_telegram_callback_data, telegram_webhook_secret
from tocsin.events.config import parse_config
from tocsin.events.keys import env_secret_key
from tocsin.events.streams import DELIVERIES

ROUTE_TOKEN = "route-token-chat-answers-01"
ONE_ALERT = {
    "receiver": "tocsin", "status": "firing", "version": "4", "groupKey": "{}:{alertname=\"DiskFull\"}",
    "groupLabels": {"alertname": "DiskFull"}, "commonLabels": {"alertname": "DiskFull"}, "commonAnnotations": {},
    "externalURL": "http://am:9093", "truncatedAlerts": 0,
    "alerts": [{"status": "firing", "labels": {"alertname": "DiskFull", "instance": "db-01:9100",
                                               "severity": "critical"},
                "annotations": {"summary": "Disk /var is 95% full", "description": "Only 2.1 GiB left on /var"},
                "startsAt": "2026-11-27T04:19:59Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
                "fingerprint": "37cbb9468aa83d1c"}],
}


def config(providers: str, channels: str, *, alice_contact: str = "{type: log}", team_channels: str = "[]") -> str:
    return f"""
security: {{allow_private_networks: true}}
providers:
{providers}
users:
  alice:
    chat: {{telegram: alice_tg, slack: U0ALICE1, mattermost: alice.m}}
    contacts: {{out: {alice_contact}}}
channels:
{channels}
teams:
  infra:
    members: [alice]
    channels: {team_channels}
    rotations: {{primary: {{members: [alice], shift: 1d, start: "2026-01-01T09:00"}}}}
    escalation: {{steps: [{{notify: ["rotation:primary"]}}]}}
routes:
  prod: {{source: alertmanager, team: infra, token: {ROUTE_TOKEN}}}
"""


async def one_incident(stack: StackHandle) -> dict[str, Any]:
    status, answer = await stack.post_alert("alertmanager", ONE_ALERT, ROUTE_TOKEN)
    assert status == 202, answer
    [incident] = await eventually(lambda: _items(stack))
    return incident  # type: ignore[no-any-return]


async def _items(stack: StackHandle) -> list[dict[str, Any]] | None:
    return await stack.incidents() or None


async def status_of(stack: StackHandle, incident_id: str, wanted: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        detail = await stack.incident(incident_id)
        return detail if detail["status"] == wanted else None
    return await eventually(check)  # type: ignore[no-any-return]


def requests_to(provider: FakeProvider, suffix: str) -> list[Received]:
    return [r for r in provider.requests if r.path.endswith(suffix)]


async def arrived(provider: FakeProvider, suffix: str, count: int = 1) -> list[Received]:
    async def check() -> list[Received] | None:
        found = requests_to(provider, suffix)
        return found if len(found) >= count else None
    return await eventually(check)  # type: ignore[no-any-return]


# ------------------------------------------------------------------ who pressed: the mapping rule


def test_who_pressed_maps_verified_accounts_to_users():
    config = parse_config("""
users:
  alice: {chat: {telegram: "@Alice_TG", slack: U0ALICE1, mattermost: alice.m}}
  bob: {contacts: {tg: {type: telegram, chat_id: "4242"}}}
""")
    assert who_pressed(config, "telegram", "555", "alice_tg") == "alice"     # by username, any case, no @
    assert who_pressed(config, "telegram", "4242", "") == "bob"              # their private chat with the bot
    assert who_pressed(config, "slack", "U0ALICE1", "someone") == "alice"
    assert who_pressed(config, "mattermost", "x1y2", "alice.m") == "alice"
    assert who_pressed(config, "slack", "U0OTHER", "mallory") == "slack:mallory"
    assert who_pressed(config, "telegram", "999", "") == "telegram:999"
    assert who_pressed(config, "mattermost", "U0ALICE1", "") == "mattermost:U0ALICE1", "one kind's id is not another's"


# ------------------------------------------------------------------ Telegram


def telegram_fake(received: Received) -> web.Response:
    method = received.path.rsplit("/", 1)[-1]
    if method == "sendMessage":
        return web.json_response({"ok": True, "result": {"message_id": 77, "chat": {"id": -100123}}})
    if method == "setWebhook":
        return web.json_response({"ok": True, "result": True, "description": "Webhook was set"})
    return web.json_response({"ok": True, "result": True})


def callback_update(data: str, sender: dict[str, Any], chat_id: int = -100123, query_id: str = "cq-1") -> dict:
    return {"update_id": 10001, "callback_query": {
        "id": query_id, "from": {"is_bot": False, "first_name": "Someone", **sender}, "chat_instance": "-42",
        "data": data, "message": {"message_id": 77, "date": int(time.time()), "chat": {"id": chat_id,
                                                                                        "type": "supergroup"},
                                  "text": "#1 [CRITICAL] Disk /var is 95% full\nOnly 2.1 GiB left on /var"}}}


async def post_update(stack: StackHandle, secret: str, update: dict) -> int:
    assert stack.session
    async with stack.session.post(f"{stack.url}/api/v1/callbacks/telegram", json=update,
                                  headers={"X-Telegram-Bot-Api-Secret-Token": secret}) as resp:
        return resp.status


async def test_telegram_button_acts_as_the_presser_and_edits_the_message(stack, ntfy):
    tg = ntfy   # a FakeProvider, speaking Telegram here
    tg.default = telegram_fake
    await stack.start(config(f'  telegram: {{bot_token: "{BOT_TOKEN}", base_url: "{tg.url}"}}',
                             '  tg-ops: {type: telegram, chat_id: "-100123"}', team_channels="[tg-ops]"))
    incident = await one_incident(stack)
    [sent] = await arrived(tg, "/sendMessage")
    assert sent.path == f"/bot{BOT_TOKEN}/sendMessage" and sent.json()["chat_id"] == "-100123"
    ack, resolve = sent.json()["reply_markup"]["inline_keyboard"][0]

    # The admin points the bot's webhook at Tocsin; Telegram learns the secret from that call only.
    status, body = await stack.api("POST", "/api/v1/callbacks/telegram/setup")
    assert status == 200, body
    [hook] = requests_to(tg, "/setWebhook")
    assert hook.json()["url"] == f"{stack.url}/api/v1/callbacks/telegram"
    assert hook.json()["allowed_updates"] == ["callback_query"]
    secret = hook.json()["secret_token"]

    alice = {"id": 555, "username": "alice_tg"}
    assert await post_update(stack, "not-the-secret", callback_update(ack["callback_data"], alice)) == 401
    assert await post_update(stack, "", callback_update(ack["callback_data"], alice)) == 401
    # Genuine secret, but the button was copied into another chat: refused, and said so.
    assert await post_update(stack, secret, callback_update(ack["callback_data"], alice, chat_id=-100999)) == 200
    [refusal] = await arrived(tg, "/answerCallbackQuery")
    assert "not valid" in refusal.json()["text"]
    tampered = ack["callback_data"][:-2] + ("AA" if not ack["callback_data"].endswith("AA") else "BB")
    assert await post_update(stack, secret, callback_update(tampered, alice)) == 200
    await arrived(tg, "/answerCallbackQuery", 2)
    assert (await stack.incident(incident["id"]))["status"] == "triggered", "nothing changed"

    assert await post_update(stack, secret, callback_update(ack["callback_data"], alice, query_id="cq-ok")) == 200
    detail = await status_of(stack, incident["id"], "acknowledged")
    assert detail["acknowledged_by"] == "alice"
    answered = [r.json() for r in requests_to(tg, "/answerCallbackQuery") if r.json()["callback_query_id"] == "cq-ok"]
    assert answered and "acknowledged" in answered[0]["text"]
    [edit] = await arrived(tg, "/editMessageText")
    edit_body = edit.json()
    assert (edit_body["chat_id"], edit_body["message_id"], edit_body["parse_mode"]) == ("-100123", 77, "HTML")
    assert edit_body["text"].endswith("<b>Acknowledged by alice</b>")
    [[left]] = edit_body["reply_markup"]["inline_keyboard"]
    assert left["text"] == "Resolve"
    assert read_telegram_callback_data(env_secret_key(), left["callback_data"], "-100123")[0] \
        == "resolve"

    # Someone Tocsin does not know resolves it: recorded by their Telegram name.
    mallory = {"id": 999, "username": "mallory"}
    assert await post_update(stack, secret, callback_update(resolve["callback_data"], mallory, query_id="cq-2")) == 200
    detail = await status_of(stack, incident["id"], "resolved")
    assert detail["resolved_by"] == "telegram:mallory"
    edits = await arrived(tg, "/editMessageText", 2)
    assert edits[1].json()["text"].endswith("<b>Resolved by telegram:mallory</b>")
    assert "reply_markup" not in edits[1].json(), "no buttons left once resolved"

    # A stale Acknowledge pressed after the resolve: told so; nothing changes.
    assert await post_update(stack, secret, callback_update(ack["callback_data"], alice, query_id="cq-late")) == 200
    late = await eventually(lambda: _answer_to(tg, "cq-late"))
    assert late["text"].startswith("Not changed")
    assert (await stack.incident(incident["id"]))["resolved_by"] == "telegram:mallory"


async def _answer_to(tg: FakeProvider, query_id: str) -> dict | None:
    found = [r.json() for r in requests_to(tg, "/answerCallbackQuery") if r.json()["callback_query_id"] == query_id]
    return found[0] if found else None


# ------------------------------------------------------------------ Slack


def slack_signed(body: bytes, timestamp: int, secret: str = SLACK_SIGNING_SECRET) -> dict[str, str]:
    """The headers Slack sends, computed here from Slack's documented rule."""
    base = f"v0:{timestamp}:".encode() + body
    return {"X-Slack-Request-Timestamp": str(timestamp), "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Signature": "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()}


def block_actions(sent: dict, action_id: str, user: dict, response_url: str, value: str = "") -> bytes:
    button = next(e for b in sent["blocks"] if b["type"] == "actions" for e in b["elements"]
                  if e["action_id"] == action_id)
    payload = {"type": "block_actions", "user": {"team_id": "T0", **user}, "api_app_id": "A0",
               "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C0"},
               "channel": {"id": "C0", "name": "ops"}, "response_url": response_url,
               "message": {"type": "message", "text": sent["text"], "blocks": sent["blocks"],
                           "ts": "1700000000.000100"},
               "actions": [{"type": "button", "action_id": action_id, "block_id": "tocsin_actions",
                            "value": value or button["value"], "text": button["text"],
                            "action_ts": str(time.time())}]}
    return urlencode({"payload": json.dumps(payload)}).encode()


async def post_slack(stack: StackHandle, body: bytes, headers: dict[str, str]) -> int:
    assert stack.session
    async with stack.session.post(f"{stack.url}/api/v1/callbacks/slack", data=body, headers=headers) as resp:
        return resp.status


async def test_slack_button_acts_as_the_presser_and_replaces_the_message(stack, ntfy):
    slack = ntfy
    slack.default = lambda _: web.Response(text="ok")
    await stack.start(config(f"  slack: {{signing_secret: {SLACK_SIGNING_SECRET}}}",
                             f'  slack-ops: {{type: slack, url: "{slack.url}{SLACK_HOOK_PATH}"}}',
                             team_channels="[slack-ops]"))
    incident = await one_incident(stack)
    [sent] = await arrived(slack, SLACK_HOOK_PATH)
    response_url = f"{slack.url}/actions/T0/123/response-secret"
    alice = {"id": "U0ALICE1", "username": "alice.s", "name": "alice.s"}
    body = block_actions(sent.json(), "tocsin_acknowledge", alice, response_url)
    now = int(time.time())

    assert await post_slack(stack, body, {**slack_signed(body, now), "X-Slack-Signature": "v0=" + "0" * 64}) == 401
    assert await post_slack(stack, body, slack_signed(body, now, secret="another-signing-secret-000")) == 401
    assert await post_slack(stack, body, slack_signed(body, now - 600)) == 401, "replayed after 10 minutes"
    assert await post_slack(stack, body, slack_signed(body, now + 600)) == 401
    assert await post_slack(stack, body + b"x", slack_signed(body, now)) == 401, "body changed after signing"
    forged = block_actions(sent.json(), "tocsin_acknowledge", alice, response_url, value="e30.AAAA")
    assert await post_slack(stack, forged, slack_signed(forged, now)) == 403, "a button value Tocsin did not sign"
    assert (await stack.incident(incident["id"]))["status"] == "triggered", "nothing changed"
    assert requests_to(slack, "/response-secret") == []

    assert await post_slack(stack, body, slack_signed(body, now)) == 200
    detail = await status_of(stack, incident["id"], "acknowledged")
    assert detail["acknowledged_by"] == "alice"
    [update] = await arrived(slack, "/response-secret")
    replaced = update.json()
    assert replaced["replace_original"] is True
    assert replaced["text"] == sent.json()["text"]
    assert replaced["blocks"][0] == sent.json()["blocks"][0], "the message itself is kept"
    state = next(b for b in replaced["blocks"] if b.get("block_id") == "tocsin_state")
    assert state["elements"][0]["text"] == "*Acknowledged* by alice"
    [actions] = [b for b in replaced["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions["elements"]] == ["tocsin_resolve", "tocsin_open"]

    mallory = {"id": "U0MALLORY", "username": "mallory"}
    resolve = block_actions(replaced, "tocsin_resolve", mallory, response_url)
    assert await post_slack(stack, resolve, slack_signed(resolve, int(time.time()))) == 200
    detail = await status_of(stack, incident["id"], "resolved")
    assert detail["resolved_by"] == "slack:mallory"
    updates = await arrived(slack, "/response-secret", 2)
    [actions] = [b for b in updates[1].json()["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions["elements"]] == ["tocsin_open"]

    # A stale Acknowledge pressed after the resolve: told so, privately; nothing changes.
    late = block_actions(sent.json(), "tocsin_acknowledge", alice, response_url)
    assert await post_slack(stack, late, slack_signed(late, int(time.time()))) == 200
    notice = (await arrived(slack, "/response-secret", 3))[2].json()
    assert notice["response_type"] == "ephemeral" and notice["replace_original"] is False
    assert notice["text"].startswith("Not changed")
    assert (await stack.incident(incident["id"]))["resolved_by"] == "slack:mallory"


# ------------------------------------------------------------------ Mattermost (bot mode)


def mattermost_fake(received: Received) -> web.Response:
    return web.json_response({"id": "post9x8y7z", "channel_id": "chan1", "message": ""}, status=201)


async def press_mattermost(stack: StackHandle, action: dict, user: dict[str, str], channel_id: str = "chan1",
                           context: dict | None = None) -> tuple[int, Any]:
    assert stack.session
    body = {"user_id": user["id"], "user_name": user["name"], "channel_id": channel_id, "channel_name": "devops",
            "team_id": "team1", "team_domain": "ops", "post_id": "post9x8y7z", "trigger_id": "trig",
            "type": "", "data_source": "", "context": context or action["integration"]["context"]}
    async with stack.session.post(action["integration"]["url"], json=body) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_mattermost_button_acts_as_the_presser_and_updates_the_post(stack, ntfy):
    mm = ntfy
    mm.default = mattermost_fake
    await stack.start(config("  {}", f'  mm-bot: {{type: mattermost, mode: bot, server: "{mm.url}", '
                                     f'token: {MM_BOT_TOKEN}, channel_id: chan1}}', team_channels="[mm-bot]"))
    incident = await one_incident(stack)
    [sent] = await arrived(mm, "/api/v4/posts")
    assert sent.headers["Authorization"] == f"Bearer {MM_BOT_TOKEN}"
    ack, resolve = sent.json()["props"]["attachments"][0]["actions"]
    assert ack["integration"]["url"] == f"{stack.url}/api/v1/callbacks/mattermost"
    assert (ack["style"], resolve["style"]) == ("primary", "danger")

    async def delivered() -> deliveries.Delivered | None:
        for _, data in await stack.bus.read_subject(DELIVERIES.name, deliveries.subject("mattermost")):
            event = deliveries.decoder.decode(data)
            if isinstance(event, deliveries.Delivered):
                return event
        return None
    assert (await eventually(delivered)).provider_id == "post9x8y7z", "the post id is recorded"

    alice = {"id": "u1alice", "name": "alice.m"}
    forged = {**ack["integration"]["context"], "token": ack["integration"]["context"]["token"][:-3] + "abc"}
    assert (await press_mattermost(stack, ack, alice, context=forged))[0] == 403
    assert (await press_mattermost(stack, ack, alice, channel_id="otherchan"))[0] == 403
    assert (await stack.incident(incident["id"]))["status"] == "triggered", "nothing changed"

    status, answer = await press_mattermost(stack, ack, alice)
    assert status == 200, answer
    detail = await status_of(stack, incident["id"], "acknowledged")
    assert detail["acknowledged_by"] == "alice"
    assert answer["ephemeral_text"] == f"#{incident['number']} is now acknowledged"
    [item] = answer["update"]["props"]["attachments"]
    assert item["fields"][1] == {"short": True, "title": "Status", "value": "Acknowledged by alice"}
    assert [a["id"] for a in item["actions"]] == ["resolve"]

    status, answer = await press_mattermost(stack, item["actions"][0], {"id": "u9", "name": "mallory"})
    assert status == 200, answer
    detail = await status_of(stack, incident["id"], "resolved")
    assert detail["resolved_by"] == "mattermost:mallory"
    [item] = answer["update"]["props"]["attachments"]
    assert item["color"] == "#388e3c" and "actions" not in item


# ------------------------------------------------------------------ the resolution edits what was posted


async def test_an_alert_resolution_edits_the_chat_messages_it_paged_with(stack, ntfy, webhook):
    tg, mm = ntfy, webhook
    tg.default, mm.default = telegram_fake, mattermost_fake
    await stack.start(config(f'  telegram: {{bot_token: "{BOT_TOKEN}", base_url: "{tg.url}"}}',
                             f'  tg-ops: {{type: telegram, chat_id: "-100123"}}\n'
                             f'  mm-bot: {{type: mattermost, mode: bot, server: "{mm.url}", '
                             f'token: {MM_BOT_TOKEN}, channel_id: chan1}}', team_channels="[tg-ops, mm-bot]"))
    incident = await one_incident(stack)
    await arrived(tg, "/sendMessage")
    await arrived(mm, "/api/v4/posts")

    resolved = json.loads(json.dumps(ONE_ALERT))
    resolved["status"] = resolved["alerts"][0]["status"] = "resolved"
    resolved["alerts"][0]["endsAt"] = "2026-11-27T05:00:00Z"
    assert (await stack.post_alert("alertmanager", resolved, ROUTE_TOKEN))[0] == 202
    await status_of(stack, incident["id"], "resolved")

    [edit] = await arrived(tg, "/editMessageText")
    body = edit.json()
    assert (body["chat_id"], body["message_id"]) == ("-100123", 77)
    assert body["text"].startswith(f"<b>Resolved: #{incident['number']} [CRITICAL]")
    assert body["text"].endswith("Resolved by system") and "reply_markup" not in body, "no buttons left"
    [patch] = await arrived(mm, "/api/v4/posts/post9x8y7z/patch")
    assert patch.method == "PUT" and patch.headers["Authorization"] == f"Bearer {MM_BOT_TOKEN}"
    [item] = patch.json()["props"]["attachments"]
    assert item["color"] == "#388e3c" and "actions" not in item
    assert item["fields"][1]["value"] == "resolved by system"
    assert len(requests_to(tg, "/sendMessage")) == 1 and len(requests_to(mm, "/api/v4/posts")) == 1, \
        "edited, not posted again"


# ------------------------------------------------------------------ Web Push: the signed action link


async def test_webpush_action_acknowledges_as_the_person_paged(stack, ntfy):
    push = ntfy
    push.default = lambda _: web.Response(status=201, headers={"Location": f"{push.url}/m/1"})
    private, public = new_vapid_key()
    browser = Browser(f"{push.url}/push/v2/alice-browser")
    await stack.start(config(f'  webpush: {{vapid_private_key: "{private}", subject: "mailto:ops@example.com"}}',
                             "  {}", alice_contact=f"{{type: webpush, subscription: '{browser.subscription()}'}}"))
    incident = await one_incident(stack)
    [sent] = await arrived(push, "/alice-browser")
    verify_vapid(sent.headers["Authorization"], browser.endpoint, public)
    shown = browser.decrypt(sent)
    assert shown["link"] == f"{stack.url}/incidents/{incident['id']}"
    ack = next(a for a in shown["actions"] if a["action"] == "acknowledge")

    assert stack.session
    async with stack.session.post(ack["url"].replace("/answer/", "/answer/x"),
                                  headers={"Accept": "application/json"}) as resp:
        assert resp.status == 403
    assert (await stack.incident(incident["id"]))["status"] == "triggered"

    # What the service worker does on a notification click with action "acknowledge".
    async with stack.session.post(ack["url"], headers={"Accept": "application/json"}) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"] == "acknowledged"
    detail = await status_of(stack, incident["id"], "acknowledged")
    assert detail["acknowledged_by"] == "alice"


async def test_chat_callbacks_refuse_junk_and_ignore_what_is_not_theirs(stack, ntfy):
    tg = ntfy
    tg.default = telegram_fake
    await stack.start(config("  {}", "  {}"))
    assert stack.session

    async def post(path: str, data: bytes, **headers: str) -> tuple[int, Any]:
        async with stack.session.post(f"{stack.url}{path}", data=data,  # type: ignore[union-attr]
                                      headers={"Content-Type": "application/json", **headers}) as resp:
            return resp.status, await resp.json(content_type=None)

    status, body = await post("/api/v1/callbacks/slack", b"payload=x")
    assert (status, body["error"]["code"]) == (404, "not_found"), "no signing secret: Slack answers are off"
    for data in (b"\x00not json", b"[1, 2]", b'{"context": {"action": "acknowledge"}}',
                 b'{"context": {"action": "explode", "token": "x"}}'):
        status, body = await post("/api/v1/callbacks/mattermost", data)
        assert status in (400, 403) and "error" in body, data
    secret = telegram_webhook_secret(env_secret_key())
    status, body = await post("/api/v1/callbacks/telegram", b"\x00", **{"X-Telegram-Bot-Api-Secret-Token": secret})
    assert status == 400
    message = {"update_id": 1, "message": {"message_id": 5, "chat": {"id": 1}, "text": "/ack 1"}}
    status, body = await post("/api/v1/callbacks/telegram", json.dumps(message).encode(),
                              **{"X-Telegram-Bot-Api-Secret-Token": secret})
    assert (status, body) == (200, {}), "a chat message is not an answer"
    status, body = await stack.api("POST", "/api/v1/callbacks/telegram/setup")
    assert status == 409 and "bot_token" in body["error"]["message"]
    assert tg.requests == [] and await stack.incidents() == []


def test_a_mattermost_button_is_bound_to_the_channel_or_contact_it_was_posted_by():
    config = parse_config("""
users:
  alice:
    contacts: {mm: {type: mattermost, mode: bot, server: "https://chat.example", token: t, channel_id: dmalice}}
channels:
  mm-bot: {type: mattermost, mode: bot, server: "https://chat.example", token: t, channel_id: chan1}
""")
    assert destination(config, "mm-bot")["channel_id"] == "chan1"
    assert destination(config, "alice/mm")["channel_id"] == "dmalice"
    assert destination(config, "bob/mm") == destination(config, "nobody") == {}
