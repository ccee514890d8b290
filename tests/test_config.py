"""tocsin.yaml: every error reported with its path, nothing applied on any error, secrets masked."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tocsin.events.config import ConfigError, parse_config, read_config, redacted

ROOT = Path(__file__).resolve().parents[1]
BASE = """
users:
  alice: {contacts: {push: {type: ntfy, topic: alice}}}
  bob: {}
teams:
  infra:
    members: [alice, bob]
    rotations: {primary: {members: [alice, bob], shift: 1w, start: 2026-11-30T09:00}}
    escalation: {steps: [{notify: ["rotation:primary"], wait: 5m}]}
routes:
  prod: {source: alertmanager, team: infra, token: "0123456789abcdef"}
"""


def errors_of(text: str, env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env=env or {})
    return info.value.errors


def test_the_example_files_are_valid():
    config = parse_config((ROOT / "examples" / "tocsin.yaml").read_text(), env={})
    assert "infra" in config.teams and config.routes["demo-alertmanager"].source == "alertmanager"
    parse_config(BASE, env={})


def test_the_design_example_is_valid_with_its_variables_set():
    text = (ROOT.parent / "shared" / "design" / "CONFIG.md")
    if not text.exists():
        pytest.skip("shared/design is not beside this checkout")
    block = re.search(r"```yaml\n(.*?)```", text.read_text(), re.S).group(1)
    names = set(re.findall(r"\$\{([A-Z_0-9]+)\}", block))
    env = {n: "https://hooks.example.com/x" if "HOOK" in n or "URL" in n else "secret-value-0123456789"
           for n in names}
    # Values whose form the config checks: a Telegram bot token, and a VAPID key that loads.
    env |= {"TELEGRAM_BOT": "123456789:AAH-example-token-abcdefghijklmnopqr",
            "VAPID_KEY": "3JUFDcFmRFNzy0-y9ZJUWnyExQBZPDjRuUdcJOaRtbE"}
    users = "\n".join(f"  {u}: {{email: {u}@example.com, phone: '+15550003334'}}" for u in ("bob", "carol"))
    block = block.replace("\nchannels:", f"\n{users}\n\nchannels:", 1)
    config = parse_config(block, env=env)
    assert config.teams["infra"].escalation.repeat == 2


@pytest.mark.parametrize(("patch", "path", "message"), [
    (("members: [alice, bob]", "members: [alice, carl]"), "teams.infra.members[1]", 'unknown user "carl"'),
    (("[alice, bob], shift", "[alice, bob, carl], shift"), "teams.infra.rotations.primary.members[2]",
     'unknown user "carl"'),
    (("shift: 1w", "shift: 1 week"), "teams.infra.rotations.primary.shift", "not a duration"),
    (("shift: 1w", "shift: 30s"), "teams.infra.rotations.primary.shift", "at least 1m"),
    (("start: 2026-11-30T09:00", "start: tomorrow"), "teams.infra.rotations.primary.start", "not a date-time"),
    (("rotation:primary", "rotation:nope"), "teams.infra.escalation.steps[0].notify[0]", 'unknown rotation'),
    (("rotation:primary", "pager:primary"), "teams.infra.escalation.steps[0].notify[0]", "must be rotation:"),
    (("source: alertmanager", "source: nagios"), "routes.prod.source", "unknown source"),
    (("team: infra, token", "team: ops, token"), "routes.prod.team", 'unknown team "ops"'),
    (('token: "0123456789abcdef"', 'token: "short"'), "routes.prod.token", "at least 16"),
    (("type: ntfy", "type: pigeon"), "users.alice.contacts.push.type", "unknown type"),
    (("topic: alice", "topic: alice, colour: red"), "users.alice.contacts.push.colour", "unknown field"),
    (("bob: {}", "bob: {phone: '555-1234'}"), "users.bob.phone", "E.164"),
    (("bob: {}", "bob: {timezone: Mars/Olympus}"), "users.bob.timezone", "unknown time zone"),
    (("bob: {}", "bob: {role: root}"), "users.bob.role", "admin or user"),
    (("bob: {}", "bob: {nickname: b}"), "users.bob", "unknown field"),
    (("wait: 5m", "wait: soon"), "teams.infra.escalation.steps[0].wait", "not a duration"),
    (("source: alertmanager, team: infra,", "source: webhook, fields: {titel: a.b}, team: infra,"),
     "routes.prod.fields.titel", "unknown field"),
    (("source: alertmanager, team: infra,", "source: alertmanager, fields: {title: a.b}, team: infra,"),
     "routes.prod.fields", "webhook routes only"),
    (("bob: {}", "bob: {}\nhosts:\n  web-01: {interval: 30}"), "hosts.web-01.interval",
     "a duration such as 30s"),
    (("bob: {}", "bob: {}\nsilences:\n  - {matchers: {env: x}, starts: 2026-12-02T02:00, ends: 2026-12-01T22:00}"),
     "silences[0].ends", "must be after starts"),
    (("bob: {}",
      "bob: {}\nsilences:\n  - {matchers: {env: \"=~(\"}, starts: 2026-12-01T22:00, ends: 2026-12-02T02:00}"),
     "silences[0].matchers.env", "regular expression"),
    (("bob: {}", "bob: {}\nsilences:\n  - {matchers: {}, starts: 2026-12-01T22:00, ends: 2026-12-02T02:00}"),
     "silences[0].matchers", "at least one matcher"),
    (("bob: {}", "bob: {}\nsilences:\n  - {matchers: {env: x}, starts: soon, ends: 2026-12-02T02:00}"),
     "silences[0].starts", "not a date-time"),
])
def test_each_error_names_its_path(patch, path, message):
    old, new = patch
    assert old in BASE
    errors = errors_of(BASE.replace(old, new, 1))
    assert any(p == path and message in m for p, m in errors), errors


def test_all_errors_are_reported_at_once():
    text = BASE.replace("members: [alice, bob]", "members: [x1, x2]").replace("source: alertmanager", "source: y")
    paths = {p for p, _ in errors_of(text)}
    assert {"teams.infra.members[0]", "teams.infra.members[1]", "routes.prod.source"} <= paths


def test_matchers_are_validated_and_limited():
    bad = BASE.replace("token: \"0123456789abcdef\"}", "token: \"0123456789abcdef\", match: {env: \"=~(prod\"}}")
    assert any(p == "routes.prod.match.env" and "regular expression" in m for p, m in errors_of(bad))
    long = BASE.replace("token: \"0123456789abcdef\"}",
                        "token: \"0123456789abcdef\", match: {env: \"=~" + "a" * 300 + "\"}}")
    assert any("at most" in m for _, m in errors_of(long))


def test_environment_substitution():
    text = BASE.replace('"0123456789abcdef"', '"${ROUTE_TOKEN}"')
    assert parse_config(text, env={"ROUTE_TOKEN": "from-the-environment-1"}).routes["prod"].token == \
        "from-the-environment-1"
    assert ("routes.prod.token", "environment variable ROUTE_TOKEN is not set") in errors_of(text)


@pytest.mark.parametrize("text", ["", "just a string", "[1, 2]", "users: [alice]", "{a: [}", "\t- bad"])
def test_malformed_files(text):
    if not text:
        parse_config(text, env={})  # an empty file is an empty config
        return
    assert errors_of(text)


def test_export_masks_secrets():
    text = BASE.replace("topic: alice}", "topic: alice, token: tk-super-secret}")
    doc = redacted(parse_config(text, env={}))
    assert "tk-super-secret" not in str(doc) and "0123456789abcdef" not in str(doc)
    assert doc["users"]["alice"]["contacts"]["push"]["token"] == "********"


def test_config_check_command(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(BASE)
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE.replace("members: [alice, bob]", "members: [alice, carl]"))
    tocsin = [sys.executable, "-m", "tocsin"]
    ok = subprocess.run([*tocsin, "config", "check", str(good)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "ok" in ok.stdout
    failed = subprocess.run([*tocsin, "config", "check", str(bad)], capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1
    assert 'teams.infra.members[1]: unknown user "carl"' in failed.stderr
    missing = subprocess.run([*tocsin, "config", "check", str(tmp_path / "nope.yaml")], capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_text_that_is_not_unicode_is_refused_with_a_clear_error():
    # Found by the schemathesis run: YAML accepts "\ud800", which no store can take.
    with pytest.raises(ConfigError, match="not valid Unicode"):
        read_config('timezone: "\\ud800"\n')
