"""Sign-in: password check, session cookie, CSRF on cookie writes, logout, rate limits, password change."""

from __future__ import annotations

import aiohttp
import pytest

from harness import StackHandle, eventually
from tocsin.api import users

CONFIG = """
users:
  alice: {name: Alice Example, email: alice@example.com, contacts: {out: {type: log}}}
  bob: {contacts: {out: {type: log}}}
teams:
  infra:
    members: [alice]
    viewers: [bob]
    rotations: {primary: {members: [alice], shift: 1d, start: "2026-01-01T09:00"}}
    escalation: {steps: [{notify: ["rotation:primary"]}]}
"""
PASSWORD = "correct horse battery"


def browser_session() -> aiohttp.ClientSession:
    """A client that keeps cookies like a browser (aiohttp's jar drops cookies of IP hosts unless unsafe)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def started(stack: StackHandle) -> StackHandle:
    await stack.start(CONFIG, services=())
    await users.set_password(stack.pool, "alice", PASSWORD)
    return stack


async def sign_in(stack: StackHandle, session: aiohttp.ClientSession, username: str = "alice",
                  password: str = PASSWORD) -> tuple[int, dict, aiohttp.ClientResponse]:
    async with session.post(f"{stack.url}/api/v1/auth/login",
                            json={"username": username, "password": password}) as resp:
        return resp.status, await resp.json(), resp


async def test_sign_in_sets_a_hardened_cookie_and_me_answers(stack):
    await started(stack)
    async with browser_session() as browser:
        status, body, resp = await sign_in(stack, browser)
        assert status == 200, body
        cookie = resp.cookies["tocsin_session"]
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
        assert not cookie["secure"]   # plain http on loopback; see the https test below
        assert body["user"]["username"] == "alice" and body["user"]["teams"] == {"infra": "responder"}
        assert body["csrf_token"] and body["user"]["csrf_token"] == body["csrf_token"]
        async with browser.get(f"{stack.url}/api/v1/me") as resp:
            me = await resp.json()
            assert resp.status == 200
            assert me == {**body["user"]}
            assert {me["name"], me["email"], me["role"]} == {"Alice Example", "alice@example.com", "user"}
        # The session id is stored only as an HMAC.
        stored = await stack.pool.fetchval("SELECT id_hmac FROM api_sessions")
        assert stored != cookie.value and cookie.value not in stored


async def test_cookie_is_secure_behind_https(stack, monkeypatch):
    # Behind a TLS proxy the request reaches Tocsin over plain http; the public URL says https.
    monkeypatch.setenv("TOCSIN_PUBLIC_URL", "https://tocsin.example.com")
    await started(stack)
    async with browser_session() as browser:
        status, _, resp = await sign_in(stack, browser)
        assert status == 200 and resp.cookies["tocsin_session"]["secure"]


async def test_wrong_password_and_unknown_user_get_the_same_answer(stack):
    await started(stack)
    async with browser_session() as browser:
        wrong = await sign_in(stack, browser, password="not the password at all")
        unknown = await sign_in(stack, browser, username="mallory", password=PASSWORD)
        nopassword = await sign_in(stack, browser, username="bob", password=PASSWORD)
        for status, body, resp in (wrong, unknown, nopassword):
            assert status == 401
            assert body["error"]["code"] == "bad_credentials"
            assert body == wrong[1]
            assert "tocsin_session" not in resp.cookies
        async with browser.get(f"{stack.url}/api/v1/me") as resp:
            assert resp.status == 401


async def test_failed_sign_ins_are_rate_limited_per_username(stack):
    await started(stack)
    async with browser_session() as browser:
        for _ in range(5):
            status, _, _ = await sign_in(stack, browser, password="guess guess guess")
            assert status == 401
        status, body, resp = await sign_in(stack, browser)   # even the right password, for now
        assert status == 429 and body["error"]["code"] == "rate_limited"
        assert 0 < int(resp.headers["Retry-After"]) <= 15 * 60
        # Another name from the same address is not locked out by alice's failures.
        await users.set_password(stack.pool, "bob", "bobs own long password")
        status, _, _ = await sign_in(stack, browser, username="bob", password="bobs own long password")
        assert status == 200


async def test_failed_sign_ins_are_rate_limited_per_address(stack):
    await started(stack)
    async with browser_session() as browser:
        for i in range(20):
            status, _, _ = await sign_in(stack, browser, username=f"nobody{i}", password="guess guess guess")
            assert status == 401
        status, _, resp = await sign_in(stack, browser)
        assert status == 429 and int(resp.headers["Retry-After"]) > 0


async def test_cookie_writes_need_the_csrf_token_and_tokens_do_not(stack):
    await started(stack)
    async with browser_session() as browser:
        _, body, _ = await sign_in(stack, browser)
        csrf = body["csrf_token"]
        url = f"{stack.url}/api/v1/me/tokens"
        async with browser.post(url, json={"name": "ci"}) as resp:
            assert resp.status == 403 and (await resp.json())["error"]["code"] == "csrf"
        async with browser.post(url, json={"name": "ci"}, headers={"X-CSRF-Token": csrf + "x"}) as resp:
            assert resp.status == 403 and (await resp.json())["error"]["code"] == "csrf"
        async with browser.post(url, json={"name": "ci"}, headers={"X-CSRF-Token": csrf}) as resp:
            created = await resp.json()
            assert resp.status == 201, created
    # A bearer token needs no CSRF token (no browser sends it by itself).
    async with aiohttp.ClientSession() as script, script.post(
            url, json={"name": "ci2"}, headers={"Authorization": f"Bearer {created['token']}"}) as resp:
        assert resp.status == 201


async def test_logout_revokes_the_session_on_the_server(stack):
    await started(stack)
    async with browser_session() as browser:
        _, body, resp = await sign_in(stack, browser)
        stolen = resp.cookies["tocsin_session"].value
        async with browser.post(f"{stack.url}/api/v1/auth/logout") as resp:
            assert resp.status == 403   # a write: needs the CSRF token too
        async with browser.post(f"{stack.url}/api/v1/auth/logout",
                                headers={"X-CSRF-Token": body["csrf_token"]}) as resp:
            assert resp.status == 204
    # Whoever kept a copy of the cookie cannot use it.
    async with aiohttp.ClientSession(cookies={"tocsin_session": stolen}) as thief, \
            thief.get(f"{stack.url}/api/v1/me") as resp:
        assert resp.status == 401


async def test_expired_and_idle_sessions_end(stack):
    await started(stack)
    async with browser_session() as browser:
        await sign_in(stack, browser)
        await stack.pool.execute("UPDATE api_sessions SET last_seen_at = now() - interval '13 hours'")
        async with browser.get(f"{stack.url}/api/v1/me") as resp:
            assert resp.status == 401
        await sign_in(stack, browser)
        await stack.pool.execute("UPDATE api_sessions SET expires_at = now() - interval '1 second'")
        async with browser.get(f"{stack.url}/api/v1/me") as resp:
            assert resp.status == 401


async def test_changing_the_password_needs_the_current_one_and_ends_other_sessions(stack):
    await started(stack)
    async with browser_session() as laptop, browser_session() as phone:
        _, body, _ = await sign_in(stack, laptop)
        await sign_in(stack, phone)
        url, headers = f"{stack.url}/api/v1/me/password", {"X-CSRF-Token": body["csrf_token"]}
        async with laptop.post(url, headers=headers, json={"current_password": "wrong wrong wrong",
                                                           "new_password": "a brand new passphrase"}) as resp:
            assert resp.status == 403
        async with laptop.post(url, headers=headers, json={"current_password": PASSWORD,
                                                           "new_password": "short"}) as resp:
            assert resp.status == 422 and (await resp.json())["error"]["details"] == {"path": "new_password"}
        async with laptop.post(url, headers=headers, json={"current_password": PASSWORD,
                                                           "new_password": "a brand new passphrase"}) as resp:
            assert resp.status == 204
        async with laptop.get(f"{stack.url}/api/v1/me") as resp:
            assert resp.status == 200
        async with phone.get(f"{stack.url}/api/v1/me") as resp:
            assert resp.status == 401
        assert (await sign_in(stack, laptop))[0] == 401
        assert (await sign_in(stack, laptop, password="a brand new passphrase"))[0] == 200


async def test_sign_in_is_audited(stack):
    await started(stack)
    async with browser_session() as browser:
        await sign_in(stack, browser)

    async def rows():
        return await stack.pool.fetch("SELECT actor, action, via FROM api_audit WHERE action LIKE 'session.%'")
    found = await eventually(rows)
    assert [(r["actor"], r["action"], r["via"]) for r in found] == [("alice", "session.started", "password")]


def test_weak_passwords_are_refused():
    for weak, why in (("short", "at least"), ("aaaaaaaaaaaaaaaa", "different"), ("Password123!", "common"),
                      ("alice-is-great-2026", "username")):
        try:
            users.check_password(weak, "alice")
        except users.WeakPassword as exc:
            assert why in str(exc), (weak, exc)
        else:
            raise AssertionError(f"{weak!r} was accepted")
    users.check_password("correct horse battery", "alice")


def test_create_admin_refuses_weak_passwords_and_asks_when_it_cannot(tmp_path, capsys, monkeypatch):
    import io

    from tocsin.cli import main
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    with pytest.raises(SystemExit) as exit_:
        main(["--data-dir", str(tmp_path), "user", "create-admin", "root", "--email", "r@example.com",
              "--password-stdin"])
    assert exit_.value.code == 2
    assert "at least 12 characters" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(""))   # not a terminal, and no --password-stdin
    with pytest.raises(SystemExit) as exit_:
        main(["--data-dir", str(tmp_path), "user", "create-admin", "root", "--email", "r@example.com"])
    assert exit_.value.code == 2
    assert "--password-stdin" in capsys.readouterr().err


async def test_passwords_are_argon2id_and_old_parameters_are_upgraded_at_sign_in(stack):
    from argon2 import PasswordHasher
    await started(stack)
    stored = await stack.pool.fetchval("SELECT hash FROM api_passwords WHERE username = 'alice'")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$") and PASSWORD not in stored
    old = PasswordHasher(memory_cost=8 * 1024, time_cost=1, parallelism=1).hash(PASSWORD)
    await stack.pool.execute("UPDATE api_passwords SET hash = $1 WHERE username = 'alice'", old)
    async with browser_session() as browser:
        assert (await sign_in(stack, browser))[0] == 200
    upgraded = await stack.pool.fetchval("SELECT hash FROM api_passwords WHERE username = 'alice'")
    assert upgraded != old and upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
