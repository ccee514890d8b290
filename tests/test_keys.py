"""The secret key and the signed action tokens built on it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from tocsin.events import keys, signing


def test_key_is_generated_once_into_the_data_dir_private_to_its_owner(tmp_path, monkeypatch):
    monkeypatch.delenv(keys.KEY_ENV, raising=False)
    first = keys.secret_key(tmp_path)
    assert keys.secret_key(tmp_path) == first
    mode = stat.S_IMODE(os.stat(tmp_path / keys.KEY_FILE).st_mode)
    assert mode == 0o600


def test_the_environment_wins_and_a_short_or_missing_key_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(keys.KEY_ENV, "k" * 40)
    assert keys.secret_key(tmp_path) == keys.secret_key(None)
    assert not (tmp_path / keys.KEY_FILE).exists()
    monkeypatch.setenv(keys.KEY_ENV, "short")
    with pytest.raises(keys.MissingSecretKey, match="shorter than"):
        keys.secret_key(tmp_path)
    monkeypatch.delenv(keys.KEY_ENV)
    with pytest.raises(keys.MissingSecretKey, match="no secret key"):
        keys.secret_key(None)


def test_action_token_round_trip_and_every_forgery_is_refused():
    key, other = b"a" * 32, b"b" * 32
    token = signing.action_token(key, incident_id="inc-1", user="alice", notification_id="n-1")
    assert signing.read_action_token(key, token) == ("inc-1", "alice", "n-1")
    data, mac = token.split(".")
    forged_payload = signing._b64(b'{"i":"inc-1","u":"mallory","n":"","exp":9999999999}')
    for bad in [f"{forged_payload}.{mac}", token + "x", "x" * 5000, "", "a.b.c", f"{data}.", ".", "!!.!!"]:
        with pytest.raises(signing.BadSignature):
            signing.read_action_token(key, bad)
    with pytest.raises(signing.BadSignature, match="bad signature"):
        signing.read_action_token(other, token)
    # A token signed for another purpose (a session, say) is not an action token.
    session = signing.sign(key, "session", {"i": "inc-1", "u": "alice"}, 60)
    with pytest.raises(signing.BadSignature):
        signing.read_action_token(key, session)
    expired = signing.action_token(key, incident_id="inc-1", user="alice", ttl=-1)
    with pytest.raises(signing.BadSignature, match="expired"):
        signing.read_action_token(key, expired)


@pytest.mark.parametrize("service", ["api", "notifier"])
def test_api_and_notifier_refuse_to_start_without_a_key(service, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != keys.KEY_ENV}
    env.update(TOCSIN_NATS_URL="nats://127.0.0.1:1", TOCSIN_DATABASE_URL="postgresql://nobody@127.0.0.1:1/x")
    proc = subprocess.run([sys.executable, "-m", "tocsin", service, "--data-dir", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "no secret key" in proc.stderr
