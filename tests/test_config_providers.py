"""`providers:` blocks and destination fields of email, sms, voice, pushover and signal: every error has its path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tocsin.events.config import ConfigError, parse_config, warnings
from tocsin.events.directory import Directory

GOOD = """
providers:
  smtp: {host: smtp.example.com, port: 587, starttls: true, username: tocsin@example.com, password: pw,
         from: tocsin@example.com}
  twilio: {account_sid: AC0123456789abcdef0123456789abcdef, auth_token: tok, from: "+15550001111",
           base_url: "https://api.twilio.com"}
  pushover: {token: azGDORePK8gMaC0QOYAMyEEuzJnyUi, base_url: "https://api.pushover.net"}
  signal: {rest_url: "http://127.0.0.1:8080", account: "+15550002222"}
users:
  alice:
    email: alice@example.com
    phone: "+15550003333"
    contacts:
      mail: {type: email}
      text: {type: sms}
      call: {type: voice, to: "+15550005555"}
      po: {type: pushover, user_key: uQiRzpo4DXghDmr9QzzfQu27cmVRsG, priority: 2, retry: 60, expire: 3600}
      sig: {type: signal}
channels:
  ops-mail: {type: email, to: [ops@example.com, oncall@example.com]}
  signal-oncall: {type: signal, recipient: "+15550004444"}
"""


def test_a_full_example_is_valid_and_needs_no_warning():
    config = parse_config(GOOD, env={})
    assert warnings(config) == []
    plan = {step.contact: step.destination for step in Directory.build(config).contact_plan("alice")}
    assert plan["mail"] == {"to": "alice@example.com"}
    assert plan["text"] == {"to": "+15550003333"}
    assert plan["call"] == {"to": "+15550005555"}
    assert plan["sig"] == {"recipient": "+15550003333"}, "a signal contact defaults to the user's phone"


@pytest.mark.parametrize(("patch", "path", "message"), [
    (("port: 587", "port: 99999"), "providers.smtp.port", "port number"),
    (("port: 587", "port: 587, tls: true"), "providers.smtp", "not both"),
    (("starttls: true", "starttls: maybe"), "providers.smtp.starttls", "true or false"),
    (("host: smtp.example.com, ", ""), "providers.smtp.host", "required for smtp"),
    (("from: tocsin@example.com}", "from: tocsin}"), "providers.smtp.from", "not an email address"),
    (("password: pw,", ""), "providers.smtp", "username and password go together"),
    (("port: 587,", "port: 587, pasword: x,"), "providers.smtp.pasword", "unknown field"),
    (("auth_token: tok, ", ""), "providers.twilio.auth_token", "required for twilio"),
    (('from: "+15550001111"', 'from: "5550001111"'), "providers.twilio.from", "E.164"),
    (("account_sid: AC0123", "account_sid: SK0123"), "providers.twilio.account_sid", "starts with AC"),
    (('base_url: "https://api.twilio.com"', "base_url: ftp://x"), "providers.twilio.base_url", "not an http"),
    (("token: azGDORePK8gMaC0QOYAMyEEuzJnyUi, ", ""), "providers.pushover.token", "required for pushover"),
    (("token: azGDORePK8gMaC0QOYAMyEEuzJnyUi,", "token: azGDORePK8gMaC0QOYAMyEEuzJnyUi, poll: 1s,"),
     "providers.pushover.poll", "at least 5s"),
    (("token: azGDORePK8gMaC0QOYAMyEEuzJnyUi,", "token: azGDORePK8gMaC0QOYAMyEEuzJnyUi, poll: often,"),
     "providers.pushover.poll", "not a duration"),
    (('rest_url: "http://127.0.0.1:8080", ', ""), "providers.signal", "either cli_path"),
    (('rest_url: "http://127.0.0.1:8080"', "cli_path: /usr/bin/signal-cli, rest_url: http://x"),
     "providers.signal", "either cli_path"),
    (('account: "+15550002222"', 'account: "0049"'), "providers.signal.account", "E.164"),
    (('call: {type: voice, to: "+15550005555"}', 'call: {type: voice, to: "555-5555"}'),
     "users.alice.contacts.call.to", "E.164"),
    (('call: {type: voice, to: "+15550005555"}', 'call: {type: voice, to: ["+15550005555", "+15550006666"]}'),
     "users.alice.contacts.call.to", "one E.164 number"),
    (("to: [ops@example.com, oncall@example.com]", "to: [ops@example.com, nobody]"), "channels.ops-mail.to",
     "not an email address"),
    (("priority: 2,", "priority: 3,"), "users.alice.contacts.po.priority", "from -2 to 2"),
    (("retry: 60", "retry: 5"), "users.alice.contacts.po.retry", "from 30 to 10800"),
    (("expire: 3600", "expire: 86400"), "users.alice.contacts.po.expire", "from 30 to 10800"),
    (('signal-oncall: {type: signal, recipient: "+15550004444"}', "signal-oncall: {type: signal}"),
     "channels.signal-oncall.recipient", "required for a signal channel"),
    (('phone: "+15550003333"', 'name: Alice'), "users.alice.contacts.sig", "needs the user's phone"),
])
def test_bad_provider_or_destination_is_reported_with_its_path(patch, path, message):
    old, new = patch
    assert old in GOOD
    with pytest.raises(ConfigError) as err:
        parse_config(GOOD.replace(old, new, 1), env={})
    assert any(p == path and message in m for p, m in err.value.errors), err.value.errors


DOCS = Path(__file__).resolve().parents[1] / "docs" / "channels"


@pytest.mark.parametrize("page", ["email", "sms", "voice", "pushover", "signal"])
def test_the_config_examples_in_the_channel_pages_are_valid(page):
    blocks = re.findall(r"```yaml\n(.*?)```", (DOCS / f"{page}.md").read_text(), re.S)
    assert blocks
    env = {name: "x" * 30 for block in blocks for name in re.findall(r"\$\{([A-Z_0-9]+)\}", block)}
    for block in blocks:
        config = parse_config(block, env=env)
        assert not [w for w in warnings(config) if "not available" in w[1]]
