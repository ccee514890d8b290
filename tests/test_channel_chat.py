"""Chat and push channels (Telegram, Mattermost, Slack, Discord, Teams, Web Push) against fakes of each
provider's wire format: status → outcome tables, what each request looks like, limits, and no secret in any
recorded error.

Channels are called directly with a real aiohttp session; the secret test goes through the Notifier's one
retry wrapper, which is where errors are scrubbed.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from chatfakes import (
    BOT_TOKEN,
    DISCORD_HOOK_PATH,
    MM_BOT_TOKEN,
    MM_HOOK_PATH,
    SLACK_HOOK_PATH,
    SLACK_SIGNING_SECRET,
    TEAMS_HOOK_PATH,
    TEAMS_QUERY,
    Browser,
    discord_answer,
    mattermost_answer,
    new_vapid_key,
    push_answer,
    slack_answer,
    teams_answer,
    telegram_answer,
    verify_vapid,
)

from harness import FakeProvider, Received, free_port
from tocsin.events.base import utcnow
from tocsin.events.chatbuttons import read_button_token, read_telegram_callback_data
from tocsin.events.config import Config, parse_config
from tocsin.events.configbus import ConfigWatcher
from tocsin.events.directory import Directory
from tocsin.events.notify import NotificationRequested
from tocsin.events.signing import BadSignature, read_action_token
from tocsin.notifier.app import Notifier
from tocsin.notifier.channels import REGISTRY
from tocsin.notifier.channels.base import ActionLinks, Channel, Target
from tocsin.notifier.channels.discord import DiscordChannel
from tocsin.notifier.channels.mattermost import MattermostChannel
from tocsin.notifier.channels.slack import SlackChannel
from tocsin.notifier.channels.teams import TeamsChannel
from tocsin.notifier.channels.telegram import TelegramChannel
from tocsin.notifier.channels.webpush import WebPushChannel
from tocsin.notifier.netguard import GuardedResolver
from tocsin.notifier.settings import Settings
from tocsin.router.paging import public_fields

KEY = b"test-installation-key-0123456789abcdef"
PUBLIC = "https://tocsin.example"
INCIDENT = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
LINK = f"{PUBLIC}/incidents/{INCIDENT}"
VAPID_PRIVATE, VAPID_PUBLIC = new_vapid_key()
SUBJECT = "mailto:ops@example.com"
BROWSERS: dict[str, Browser] = {}


def page(**changes: Any) -> NotificationRequested:
    fields: dict[str, Any] = {
        "id": "notif-0001", "aggregate_id": INCIDENT, "at": utcnow(), "channel_kind": "slack",
        "channel": "ops-chat", "user": "", "incident_number": 42, "title": "Disk /var is 97% full",
        "body": "on db-1, mounted at /var", "severity": "critical", "link": LINK}
    fields.update(changes)
    return NotificationRequested(**fields)


def browser(provider: FakeProvider) -> Browser:
    if provider.url not in BROWSERS:
        BROWSERS[provider.url] = Browser(f"{provider.url}/push/v2/sub-4f3e2d1c")
    return BROWSERS[provider.url]


@dataclass
class Kind:
    channel: type[Channel]
    target: Callable[[FakeProvider], Target]
    answer: Callable[[int], web.Response]
    ok: int


KINDS: dict[str, Kind] = {
    "telegram": Kind(TelegramChannel, lambda p: Target(
        {"chat_id": "-100123"}, {"bot_token": BOT_TOKEN, "base_url": p.url}, "telegram"), telegram_answer, 200),
    "mattermost": Kind(MattermostChannel, lambda p: Target(
        {"url": p.url + MM_HOOK_PATH, "channel": "devops"}, {}, "mattermost"), mattermost_answer, 200),
    "mattermost-bot": Kind(MattermostChannel, lambda p: Target(
        {"mode": "bot", "server": p.url, "token": MM_BOT_TOKEN, "channel_id": "chan1"}, {}, "mattermost"),
        mattermost_answer, 201),
    "slack": Kind(SlackChannel, lambda p: Target(
        {"url": p.url + SLACK_HOOK_PATH}, {"signing_secret": SLACK_SIGNING_SECRET}, "slack"), slack_answer, 200),
    "discord": Kind(DiscordChannel, lambda p: Target(
        {"url": p.url + DISCORD_HOOK_PATH}, {}, "discord"), discord_answer, 200),
    "teams": Kind(TeamsChannel, lambda p: Target(
        {"url": f"{p.url}{TEAMS_HOOK_PATH}?{TEAMS_QUERY}"}, {}, "teams"), teams_answer, 202),
    "webpush": Kind(WebPushChannel, lambda p: Target(
        {"subscription": browser(p).subscription()}, {"vapid_private_key": VAPID_PRIVATE, "subject": SUBJECT},
        "webpush"), push_answer, 201),
}
FAILURES = [(400, "permanent"), (401, "permanent"), (403, "permanent"), (404, "permanent"), (410, "permanent"),
            (413, "permanent"), (408, "retry"), (429, "retry"), (500, "retry"), (502, "retry"), (503, "retry")]


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
        yield s


@pytest_asyncio.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    async with FakeProvider("chat") as p:
        yield p


def channel_of(kind: str, session: aiohttp.ClientSession) -> Channel:
    return KINDS[kind].channel(session, ActionLinks(PUBLIC, KEY))


def kind_of(name: str) -> str:
    return name.split("-")[0]


async def send(kind: str, session: aiohttp.ClientSession, provider: FakeProvider, **changes: Any) -> Any:
    message = page(channel_kind=kind_of(kind), **changes)
    return await channel_of(kind, session).send(message, KINDS[kind].target(provider))


# ------------------------------------------------------------------ status → outcome


def test_every_kind_is_registered_with_its_capabilities():
    for kind in ("telegram", "mattermost", "slack", "discord", "teams", "webpush"):
        assert REGISTRY[kind].kind == kind
    assert {k for k, c in REGISTRY.items() if c.supports_ack_buttons} >= {
        "telegram", "mattermost", "slack", "webpush", "ntfy"}
    assert {k for k, c in REGISTRY.items() if c.supports_status_updates} == {"telegram", "mattermost", "slack"}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize(("status", "expected"), [("ok", "ok"), *FAILURES])
async def test_provider_status_classifies_the_delivery(kind, status, expected, session, provider):
    code = KINDS[kind].ok if status == "ok" else status
    provider.answers = [lambda _, code=code: KINDS[kind].answer(code)]

    result = await send(kind, session, provider)

    assert result.outcome == expected, result
    assert len(provider.requests) == 1, "a channel classifies; it never retries by itself"
    if expected == "ok":
        assert result.error == ""
    else:
        assert result.error.startswith(f"HTTP {code}")


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_redirect_is_permanent_and_never_followed(kind, session, provider):
    async with FakeProvider("elsewhere") as elsewhere:
        provider.answers = [lambda _: web.Response(status=302, headers={"Location": f"{elsewhere.url}/x"})]
        result = await send(kind, session, provider)
        assert (result.outcome, elsewhere.requests) == ("permanent", [])


@pytest.mark.parametrize(("kind", "retry_after"), [("telegram", 3.0), ("discord", 0.75), ("slack", 4.0)])
async def test_rate_limit_answers_carry_retry_after(kind, retry_after, session, provider):
    provider.answers = [lambda _: KINDS[kind].answer(429)]
    result = await send(kind, session, provider)
    assert (result.outcome, result.retry_after) == ("retry", retry_after)


async def test_telegram_ok_false_is_not_a_sent_message(session, provider):
    provider.answers = [lambda _: web.json_response({"ok": False, "description": "odd"})]
    result = await send("telegram", session, provider)
    assert (result.outcome, result.error) == ("permanent", "HTTP 200: odd")


async def test_telegram_group_upgrade_says_the_new_chat_id(session, provider):
    provider.answers = [lambda _: web.json_response({
        "ok": False, "error_code": 400, "description": "Bad Request: group chat was upgraded to a supergroup chat",
        "parameters": {"migrate_to_chat_id": -1001234567890}}, status=400)]
    result = await send("telegram", session, provider)
    assert result.outcome == "permanent" and "-1001234567890" in result.error


@pytest.mark.parametrize("status", [404, 410])
async def test_webpush_subscription_gone_is_permanent(status, session, provider):
    provider.answers = [lambda _: push_answer(status)]
    result = await send("webpush", session, provider)
    assert result.outcome == "permanent" and "subscription is gone" in result.error


# ------------------------------------------------------------------ Telegram


def visible(text: str) -> str:
    """What Telegram shows of an HTML-mode text: tags gone, entities decoded."""
    return html.unescape(re.sub(r"</?b>", "", text))


async def test_telegram_message_and_buttons(session, provider):
    provider.answers = [lambda _: telegram_answer(200)]
    result = await send("telegram", session, provider, title="<script> & co", body="a > b")

    assert (result.outcome, result.provider_id) == ("ok", "-100123:77")
    [request] = provider.requests
    assert request.path == f"/bot{BOT_TOKEN}/sendMessage"
    body = request.json()
    assert body["chat_id"] == "-100123" and body["parse_mode"] == "HTML"
    assert body["text"] == f"<b>#42 [CRITICAL] &lt;script&gt; &amp; co</b>\na &gt; b\n{LINK}"
    ack, resolve = body["reply_markup"]["inline_keyboard"][0]
    assert (ack["text"], resolve["text"]) == ("Acknowledge", "Resolve")
    for button, action in ((ack, "acknowledge"), (resolve, "resolve")):
        assert len(button["callback_data"].encode()) <= 64
        assert read_telegram_callback_data(KEY, button["callback_data"], "-100123") == (action, INCIDENT)
        with pytest.raises(BadSignature):   # the same button pressed in another chat
            read_telegram_callback_data(KEY, button["callback_data"], "-100999")
    assert body["reply_markup"]["inline_keyboard"][1] == [{"text": "Open incident", "url": LINK}]


async def test_telegram_resolved_notice_has_no_answer_buttons(session, provider):
    await send("telegram", session, provider, message_kind="resolved")
    keyboard = provider.requests[0].json()["reply_markup"]["inline_keyboard"]
    assert keyboard == [[{"text": "Open incident", "url": LINK}]]


@pytest.mark.parametrize("body", ["x" * 10_000, "😀" * 5000, "<&>" * 3000])
async def test_telegram_text_fits_4096_utf16_units_and_keeps_the_link(body, session, provider):
    await send("telegram", session, provider, body=body)
    shown = visible(provider.requests[0].json()["text"])
    assert len(shown.encode("utf-16-le")) // 2 <= 4096
    assert shown.endswith("\n" + LINK) and "…" in shown


# ------------------------------------------------------------------ Mattermost


async def test_mattermost_webhook_posts_a_coloured_attachment(session, provider):
    await send("mattermost", session, provider)
    [request] = provider.requests
    assert request.path == MM_HOOK_PATH
    body = request.json()
    assert (body["channel"], body["username"]) == ("devops", "Tocsin")
    [item] = body["attachments"]
    assert (item["color"], item["title"], item["title_link"]) == ("#d32f2f", "#42 [CRITICAL] Disk /var is 97% full",
                                                                   LINK)
    assert item["text"] == "on db-1, mounted at /var" and "actions" not in item


async def test_mattermost_resolved_is_green(session, provider):
    await send("mattermost", session, provider, message_kind="resolved", status="resolved")
    assert provider.requests[0].json()["attachments"][0]["color"] == "#388e3c"


async def test_mattermost_bot_posts_buttons_and_records_the_post_id(session, provider):
    provider.answers = [lambda _: mattermost_answer(201)]
    result = await send("mattermost-bot", session, provider, channel="mm-bot")

    assert (result.outcome, result.provider_id) == ("ok", "post9x8y7z")
    [request] = provider.requests
    assert (request.path, request.headers["Authorization"]) == ("/api/v4/posts", f"Bearer {MM_BOT_TOKEN}")
    body = request.json()
    assert body["channel_id"] == "chan1"
    actions = body["props"]["attachments"][0]["actions"]
    assert [(a["id"], a["name"], a["type"]) for a in actions] == [
        ("acknowledge", "Acknowledge", "button"), ("resolve", "Resolve", "button")]
    for a in actions:
        assert a["integration"]["url"] == f"{PUBLIC}/api/v1/callbacks/mattermost"
        assert a["integration"]["context"]["action"] == a["id"]
        assert read_button_token(KEY, a["integration"]["context"]["token"], "mattermost") == (INCIDENT, "mm-bot")
        with pytest.raises(BadSignature):   # a Mattermost token is no Slack button
            read_button_token(KEY, a["integration"]["context"]["token"], "slack")


# ------------------------------------------------------------------ Slack


async def test_slack_block_kit_with_buttons(session, provider):
    await send("slack", session, provider, title="a <b> & c")
    [request] = provider.requests
    assert request.path == SLACK_HOOK_PATH
    body = request.json()
    assert body["text"].startswith("#42 [CRITICAL] a &lt;b&gt; &amp; c") and LINK in body["text"]
    section, context, actions = body["blocks"]
    assert section["text"]["text"] == (f"*#42 [CRITICAL] a &lt;b&gt; &amp; c*\non db-1, mounted at /var"
                                       f"\n<{LINK}|Open incident>")
    assert context["type"] == "context"
    ack, resolve, open_ = actions["elements"]
    assert (ack["action_id"], resolve["action_id"], open_["url"]) == ("tocsin_acknowledge", "tocsin_resolve", LINK)
    assert read_button_token(KEY, ack["value"], "slack") == (INCIDENT, "ops-chat")


async def test_slack_without_a_signing_secret_sends_no_answer_buttons(session, provider):
    target = Target({"url": provider.url + SLACK_HOOK_PATH}, {}, "slack")
    await SlackChannel(session, ActionLinks(PUBLIC, KEY)).send(page(), target)
    actions = provider.requests[0].json()["blocks"][-1]["elements"]
    assert [a["action_id"] for a in actions] == ["tocsin_open"]


async def test_slack_section_fits_3000_and_keeps_the_link(session, provider):
    await send("slack", session, provider, body="y" * 9000)
    text = provider.requests[0].json()["blocks"][0]["text"]["text"]
    assert len(text) <= 3000 and text.endswith(f"<{LINK}|Open incident>") and "…" in text


# ------------------------------------------------------------------ Discord


async def test_discord_embed_within_limits(session, provider):
    provider.answers = [lambda _: discord_answer(200)]
    result = await send("discord", session, provider, title="T" * 400, body="d" * 9000)

    assert (result.outcome, result.provider_id) == ("ok", "1122334455")
    [request] = provider.requests
    assert request.path == DISCORD_HOOK_PATH
    assert parse_qs(request.query)["wait"] == ["true"]
    body = request.json()
    assert body["allowed_mentions"] == {"parse": []}
    assert len(body["content"]) <= 2000
    [embed] = body["embeds"]
    assert len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
    assert embed["url"] == LINK and embed["color"] == 0xD32F2F
    assert f"[Open incident]({LINK})" in embed["description"]
    ack_url = re.search(r"\[Acknowledge\]\(([^)]+)\)", embed["description"]).group(1)
    assert ack_url.startswith(f"{PUBLIC}/api/v1/answer/") and ack_url.endswith("?action=acknowledge")


# ------------------------------------------------------------------ Teams


async def test_teams_adaptive_card(session, provider):
    result = await send("teams", session, provider)
    assert result.outcome == "ok"
    [request] = provider.requests
    assert request.path == TEAMS_HOOK_PATH
    body = request.json()
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0]["text"] == "#42 [CRITICAL] Disk /var is 97% full"
    open_, ack = card["actions"]
    assert (open_["type"], open_["url"]) == ("Action.OpenUrl", LINK)
    assert ack["type"] == "Action.OpenUrl" and ack["title"] == "Acknowledge"
    token = ack["url"].split("/answer/")[1].split("?")[0]
    assert read_action_token(KEY, token)[:2] == (INCIDENT, "ops-chat")


async def test_teams_resolved_has_only_the_incident_link(session, provider):
    await send("teams", session, provider, message_kind="resolved")
    actions = provider.requests[0].json()["attachments"][0]["content"]["actions"]
    assert [a["title"] for a in actions] == ["Open incident"]


# ------------------------------------------------------------------ Web Push


async def test_webpush_payload_decrypts_and_vapid_verifies(session, provider):
    provider.answers = [lambda _: push_answer(201)]
    result = await send("webpush", session, provider, channel="alice/browser", user="alice")

    assert (result.outcome, result.provider_id) == ("ok", "https://push.example/m/msg-1")
    [request] = provider.requests
    assert request.path == "/push/v2/sub-4f3e2d1c"
    claims = verify_vapid(request.headers["Authorization"], browser(provider).endpoint, VAPID_PUBLIC)
    assert claims["sub"] == SUBJECT
    assert (request.headers["TTL"], request.headers["Urgency"]) == ("43200", "high")
    shown = browser(provider).decrypt(request)
    assert (shown["title"], shown["body"], shown["link"]) == (
        "#42 [CRITICAL] Disk /var is 97% full", "on db-1, mounted at /var", LINK)
    assert [a["action"] for a in shown["actions"]] == ["acknowledge", "resolve"]
    token = shown["actions"][0]["url"].split("/answer/")[1].split("?")[0]
    assert read_action_token(KEY, token)[:2] == (INCIDENT, "alice")


async def test_webpush_a_forged_vapid_signature_is_detected(session, provider):
    await send("webpush", session, provider)
    header = provider.requests[0].headers["Authorization"]
    _, other_public = new_vapid_key()
    with pytest.raises(AssertionError):
        verify_vapid(header, browser(provider).endpoint, other_public)
    tampered = header.replace("t=", "t=x", 1)
    with pytest.raises(Exception):  # noqa: B017  - any failure to verify will do
        verify_vapid(tampered, browser(provider).endpoint, VAPID_PUBLIC)


async def test_webpush_long_body_still_fits_one_message(session, provider):
    await send("webpush", session, provider, body="z" * 20_000)
    request = provider.requests[0]
    assert len(request.body) <= 4096
    shown = browser(provider).decrypt(request)
    assert shown["link"] == LINK and shown["body"].endswith("…")


@pytest.mark.parametrize(("fields", "provider_fields", "error"), [
    ({}, {"vapid_private_key": VAPID_PRIVATE, "subject": SUBJECT}, "no push subscription"),
    ({"subscription": "{}"}, {"vapid_private_key": VAPID_PRIVATE, "subject": SUBJECT}, "not a push subscription"),
    (None, {"vapid_private_key": "not-a-key-but-secret-0123", "subject": SUBJECT}, "vapid_private_key"),
])
async def test_webpush_without_what_it_needs_fails_without_sending(fields, provider_fields, error, session,
                                                                   provider):
    fields = {"subscription": browser(provider).subscription()} if fields is None else fields
    result = await WebPushChannel(session, ActionLinks(PUBLIC, KEY)).send(
        page(channel_kind="webpush"), Target(fields, provider_fields, "webpush"))
    assert result.outcome == "permanent" and error in result.error
    assert "not-a-key-but-secret" not in result.error
    assert provider.requests == []


# ------------------------------------------------------------------ no secret in any recorded error


def chat_config(url: str) -> Config:
    sub = browser_for_leaks(url).subscription()
    return parse_config(f"""
security: {{allow_private_networks: true}}
providers:
  telegram: {{bot_token: "{BOT_TOKEN}", base_url: "{url}"}}
  slack: {{signing_secret: "{SLACK_SIGNING_SECRET}"}}
  webpush: {{vapid_private_key: "{VAPID_PRIVATE}", subject: "{SUBJECT}"}}
users:
  alice:
    contacts:
      browser: {{type: webpush, subscription: '{sub}'}}
channels:
  tg: {{type: telegram, chat_id: "-100123"}}
  mm: {{type: mattermost, url: "{url}{MM_HOOK_PATH}", channel: devops}}
  mm-bot: {{type: mattermost, mode: bot, server: "{url}", token: "{MM_BOT_TOKEN}", channel_id: chan1}}
  sl: {{type: slack, url: "{url}{SLACK_HOOK_PATH}"}}
  dc: {{type: discord, url: "{url}{DISCORD_HOOK_PATH}"}}
  tm: {{type: teams, url: "{url}{TEAMS_HOOK_PATH}?{TEAMS_QUERY}"}}
""")


_leak_browsers: dict[str, Browser] = {}


def browser_for_leaks(url: str) -> Browser:
    return _leak_browsers.setdefault(url, Browser(f"{url}/push/v2/leak-endpoint-secret-77aa66bb"))


def secrets_of(url: str) -> list[str]:
    sub = json.loads(browser_for_leaks(url).subscription())
    return [BOT_TOKEN, SLACK_SIGNING_SECRET, MM_BOT_TOKEN, VAPID_PRIVATE, "mattermost-hook-secret-k3y9x8w7",
            "slackhooksecretXYZ123", "discord-hook-secret-AbCdEf987", "teams-flow-secret-00aa11bb",
            "teams-sig-secret-ZZ99yy88", "leak-endpoint-secret-77aa66bb", sub["keys"]["auth"]]


@contextlib.asynccontextmanager
async def wrapper(config: Config) -> AsyncIterator[Notifier]:
    watcher = ConfigWatcher(bus=None)  # type: ignore[arg-type]  # not started: the config is set directly
    watcher.directory = Directory.build(config)
    notifier = Notifier(Settings(send_deadline=0.3, public_url=PUBLIC, secret_key=KEY),
                        bus=None, config=watcher)  # type: ignore[arg-type]
    async with contextlib.AsyncExitStack() as stack:
        notifier._sessions = {allow: await stack.enter_async_context(aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=GuardedResolver(allow)), timeout=aiohttp.ClientTimeout(total=2)))
            for allow in (False, True)}
        yield notifier


def routed(directory: Directory, channel: str) -> NotificationRequested:
    """The command as the router sends it: the public fields of the destination only."""
    if "/" in channel:
        user, contact = channel.split("/")
        [step] = [s for s in directory.contact_plan(user) if s.contact == contact]
        kind, dest = step.kind, step.destination
    else:
        kind, dest = directory.channel(channel)  # type: ignore[misc]
        user = ""
    return page(channel_kind=kind, channel=channel, user=user, destination=public_fields(dest))


def echo_everything(received: Received) -> web.Response:
    """A provider that quotes the whole request back: path, headers and body."""
    return web.Response(status=401, text=json.dumps({"path": received.path, "headers": received.headers,
                                                     "body": received.body.decode(errors="replace")}))


@pytest.mark.parametrize("channel", ["tg", "mm", "mm-bot", "sl", "dc", "tm", "alice/browser"])
async def test_no_secret_in_a_recorded_error(channel, provider, caplog):
    caplog.set_level(logging.DEBUG)
    config = chat_config(provider.url)
    provider.default = echo_everything
    async with wrapper(config) as notifier:
        message = routed(notifier.config.directory, channel)
        echoed, _ = await notifier._send_with_retries(message, None)
        refused_config = chat_config(f"http://127.0.0.1:{free_port()}")
        notifier.config.directory = Directory.build(refused_config)
        refused, _ = await notifier._send_with_retries(routed(notifier.config.directory, channel), None)

    assert echoed.outcome == "permanent" and echoed.error.startswith("HTTP 401")
    assert "********" in echoed.error, "the echo did quote a secret, masked"
    assert refused.outcome == "retry"
    for secret in secrets_of(provider.url):
        assert secret not in echoed.error
        assert secret not in refused.error
        assert secret not in caplog.text


@pytest.mark.parametrize("kind", ["slack", "discord", "teams", "mattermost"])
def test_secret_webhook_urls_are_masked_in_reprs(kind):
    url = "https://hooks.example.com/services/T0/B0/very-secret-hook-part"
    target = Target({"url": url}, {}, kind)
    assert "very-secret-hook-part" not in repr(target)
    assert target.scrub(f"POST {url} failed; path /services/T0/B0/very-secret-hook-part") == (
        "POST ******** failed; path ********")
    assert target.scrub("no_service: very-secret-hook-part") == "no_service: ********"
    teams = Target({"url": f"https://x.example{TEAMS_HOOK_PATH}?{TEAMS_QUERY}"}, {}, "teams")
    assert teams.scrub("bad sig teams-sig-secret-ZZ99yy88 for flow teams-flow-secret-00aa11bb") == (
        "bad sig ******** for flow ********")
    # A generic webhook's URL is its address, not its secret (it signs with `secret`).
    assert "very-secret-hook-part" in repr(Target({"url": url}, {}, "webhook"))


@pytest.mark.parametrize("cut", [5, 12, 20])
def test_a_secret_cut_off_at_the_end_of_an_error_is_masked(cut):
    # Errors are cut to 300 characters before they are scrubbed: the cut may fall inside a secret.
    target = Target({"chat_id": "1"}, {"bot_token": BOT_TOKEN}, "telegram")
    error = f"HTTP 401: POST /bot{BOT_TOKEN[:cut]}"
    assert target.scrub(error) == "HTTP 401: POST /bot********"


@pytest.mark.parametrize("channel", ["tg", "mm-bot", "sl", "alice/browser"])
async def test_the_address_each_channel_connects_to_is_guarded(channel, provider):
    # Telegram's base_url, a Mattermost server and a push endpoint are checked like a webhook URL.
    config = chat_config(provider.url)
    config.security.allow_private_networks = False
    async with wrapper(config) as notifier:
        result, tries = await notifier._send_with_retries(routed(notifier.config.directory, channel), None)
    assert (result.outcome, tries) == ("permanent", 1)
    assert "private address 127.0.0.1" in result.error
    assert provider.requests == []


# ------------------------------------------------------------------ a resolution edits the message paged with


RESOLVED = {"message_kind": "resolved", "status": "resolved", "by": "alice", "body": ""}


def with_update(kind: str, provider: FakeProvider, update_id: str) -> Target:
    target = KINDS[kind].target(provider)
    return Target({**target.fields, "update_id": update_id}, target.provider, target.kind)


async def test_telegram_resolution_edits_the_paged_message(session, provider):
    provider.answers = [lambda _: web.json_response({"ok": True, "result": {"message_id": 77}})]
    result = await TelegramChannel(session, ActionLinks(PUBLIC, KEY)).send(
        page(channel_kind="telegram", **RESOLVED), with_update("telegram", provider, "-100123:77"))

    assert (result.outcome, result.provider_id) == ("ok", "-100123:77")
    [request] = provider.requests
    assert request.path == f"/bot{BOT_TOKEN}/editMessageText"
    body = request.json()
    assert (body["chat_id"], body["message_id"]) == ("-100123", 77)
    assert body["text"] == f"<b>Resolved: #42 [CRITICAL] Disk /var is 97% full</b>\n{LINK}\nResolved by alice"
    assert body["reply_markup"] == {"inline_keyboard": [[{"text": "Open incident", "url": LINK}]]}


@pytest.mark.parametrize(("description", "requests", "outcome"), [
    ("Bad Request: message is not modified: specified new message content and reply markup are exactly the "
     "same", 1, "ok"),
    ("Bad Request: message to edit not found", 2, "ok"),     # deleted: a new message instead
])
async def test_telegram_resolution_when_the_edit_is_refused(description, requests, outcome, session, provider):
    provider.answers = [lambda _: web.json_response({"ok": False, "error_code": 400, "description": description},
                                                    status=400),
                        lambda _: telegram_answer(200)]
    result = await TelegramChannel(session, ActionLinks(PUBLIC, KEY)).send(
        page(channel_kind="telegram", **RESOLVED), with_update("telegram", provider, "-100123:77"))
    assert result.outcome == outcome
    assert len(provider.requests) == requests
    if requests == 2:
        assert provider.requests[1].path.endswith("/sendMessage") and result.provider_id == "-100123:77"


@pytest.mark.parametrize(("status", "posts"), [(200, 0), (403, 1), (404, 1)])
async def test_mattermost_resolution_patches_the_post(status, posts, session, provider):
    provider.answers = [lambda _: web.json_response({"id": "post1"}, status=status),
                        lambda _: mattermost_answer(201)]
    result = await MattermostChannel(session, ActionLinks(PUBLIC, KEY)).send(
        page(channel_kind="mattermost", **RESOLVED), with_update("mattermost-bot", provider, "post1"))

    assert result.outcome == "ok"
    patch = provider.requests[0]
    assert (patch.method, patch.path) == ("PUT", "/api/v4/posts/post1/patch")
    [item] = patch.json()["props"]["attachments"]
    assert item["color"] == "#388e3c" and "actions" not in item
    assert item["fields"][1] == {"short": True, "title": "Status", "value": "resolved by alice"}
    assert len([r for r in provider.requests if r.path == "/api/v4/posts"]) == posts, "a gone post: post anew"


def test_a_short_secret_is_still_masked():
    target = Target({"url": "https://h.example/x", "token": "abc"}, {}, "ntfy")
    assert target.scrub("refused token abc") == "refused token ********"
