"""OpenID Connect sign-in against a small local identity provider that speaks the real protocol:
discovery, JWKS, an authorization code exchanged at the token endpoint with the PKCE verifier."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from harness import free_port

CLIENT_ID, CLIENT_SECRET = "tocsin-web", "client-secret-for-tests"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class FakeIdp:
    """Discovery, JWKS and a token endpoint that checks the client's secret, the redirect URI and PKCE."""

    def __init__(self) -> None:
        self.port = free_port()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.codes: dict[str, tuple[str, str]] = {}    # code -> (code_challenge, id_token)
        self.token_requests: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def mint(self, claims: dict[str, Any], *, key: rsa.RSAPrivateKey | None = None, alg: str = "RS256") -> str:
        head = b64(json.dumps({"alg": alg, "kid": "k1", "typ": "JWT"}).encode())
        body = b64(json.dumps(claims).encode())
        signature = (key or self.key).sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{head}.{body}.{b64(signature)}"

    def authorize(self, challenge: str, id_token: str) -> str:
        """What the provider does when the person signs in there: a one-time code for this challenge."""
        code = secrets.token_urlsafe(16)
        self.codes[code] = (challenge, id_token)
        return code

    async def __aenter__(self) -> FakeIdp:
        numbers = self.key.public_key().public_numbers()
        jwk = {"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
               "n": b64(numbers.n.to_bytes(256, "big")), "e": b64(numbers.e.to_bytes(3, "big"))}

        async def discovery(_: web.Request) -> web.Response:
            return web.json_response({"issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
                                      "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks"})

        async def jwks(_: web.Request) -> web.Response:
            return web.json_response({"keys": [jwk]})

        async def token(request: web.Request) -> web.Response:
            form = dict(await request.post())
            self.token_requests.append(form)
            expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if request.headers.get("Authorization") != expected:
                return web.json_response({"error": "invalid_client"}, status=401)
            challenge, id_token = self.codes.pop(form.get("code", ""), ("", ""))
            verifier = form.get("code_verifier", "")
            if not challenge or b64(hashlib.sha256(verifier.encode()).digest()) != challenge:
                return web.json_response({"error": "invalid_grant"}, status=400)
            if not form.get("redirect_uri", "").endswith("/api/v1/auth/oidc/callback"):
                return web.json_response({"error": "invalid_grant"}, status=400)
            return web.json_response({"access_token": "at", "token_type": "Bearer", "id_token": id_token})

        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", discovery)
        app.router.add_get("/jwks", jwks)
        app.router.add_post("/token", token)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


def config(idp: FakeIdp) -> str:
    return f"""
security:
  oidc: {{issuer: "{idp.url}", client_id: {CLIENT_ID}, client_secret: {CLIENT_SECRET}}}
users:
  alice: {{email: Alice@Example.com, contacts: {{out: {{type: log}}}}}}
teams:
  infra:
    members: [alice]
    rotations: {{primary: {{members: [alice], shift: 1d, start: "2026-01-01T09:00"}}}}
    escalation: {{steps: [{{notify: ["rotation:primary"]}}]}}
"""


def claims(idp: FakeIdp, nonce: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": idp.url, "aud": CLIENT_ID, "sub": "u-1", "email": "alice@example.com",
            "email_verified": True, "iat": now, "exp": now + 300, "nonce": nonce}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


async def begin(stack, browser: aiohttp.ClientSession, next_path: str = "/incidents") -> dict[str, str]:
    async with browser.get(f"{stack.url}/api/v1/auth/oidc/login?next={next_path}", allow_redirects=False) as resp:
        assert resp.status == 302, await resp.text()
        location = urlsplit(resp.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert location.path == "/authorize"
    assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
    assert query["code_challenge_method"] == "S256" and query["scope"].split()[0] == "openid"
    assert query["redirect_uri"] == f"{stack.url}/api/v1/auth/oidc/callback"
    return query


async def finish(stack, browser: aiohttp.ClientSession, code: str, state: str) -> aiohttp.ClientResponse:
    async with browser.get(f"{stack.url}/api/v1/auth/oidc/callback", params={"code": code, "state": state},
                           allow_redirects=False) as resp:
        await resp.read()
        return resp


async def me_status(stack, browser: aiohttp.ClientSession) -> int:
    async with browser.get(f"{stack.url}/api/v1/me") as resp:
        return resp.status


def browser_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_oidc_sign_in_maps_the_verified_email_to_a_user(stack):
    async with FakeIdp() as idp:
        await stack.start(config(idp), services=())
        async with browser_session() as browser:
            query = await begin(stack, browser)
            code = idp.authorize(query["code_challenge"], idp.mint(claims(idp, query["nonce"])))
            resp = await finish(stack, browser, code, query["state"])
            assert resp.status == 302, resp.headers
            assert resp.headers["Location"] == "/incidents"
            assert resp.cookies["tocsin_session"]["httponly"]
            async with browser.get(f"{stack.url}/api/v1/me") as me:
                body = await me.json()
                assert me.status == 200 and body["username"] == "alice" and body["teams"] == {"infra": "responder"}
        assert idp.token_requests[0]["grant_type"] == "authorization_code"
        assert len(idp.token_requests[0]["code_verifier"]) >= 43


async def test_oidc_without_config_is_404(stack):
    await stack.start("users: {alice: {}}\n", services=())
    async with browser_session() as browser, browser.get(f"{stack.url}/api/v1/auth/oidc/login",
                                                         allow_redirects=False) as resp:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "oidc_not_configured"


@pytest.mark.parametrize("case", ["state", "nonce", "signature", "expired", "audience", "issuer", "alg-none",
                                  "unknown-email", "unverified-email", "no-cookie", "open-redirect"])
async def test_oidc_refuses_what_does_not_hold(stack, case):
    async with FakeIdp() as idp:
        await stack.start(config(idp), services=())
        async with browser_session() as browser:
            query = await begin(stack, browser, next_path="//evil.example/x" if case == "open-redirect" else "/")
            nonce, state = query["nonce"], query["state"]
            token_claims = claims(idp, nonce)
            key = None
            if case == "nonce":
                token_claims["nonce"] = "another-nonce"
            elif case == "expired":
                token_claims["exp"] = int(time.time()) - 3600
            elif case == "audience":
                token_claims["aud"] = "some-other-client"
            elif case == "issuer":
                token_claims["iss"] = "https://evil.example"
            elif case == "unknown-email":
                token_claims["email"] = "mallory@example.com"
            elif case == "unverified-email":
                token_claims["email_verified"] = False
            elif case == "signature":
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            token = idp.mint(token_claims, key=key)
            if case == "alg-none":
                head = b64(json.dumps({"alg": "none", "kid": "k1"}).encode())
                token = f"{head}.{token.split('.')[1]}."
            code = idp.authorize(query["code_challenge"], token)
            if case == "state":
                state = "not-the-state"
            if case == "no-cookie":
                browser.cookie_jar.clear()
            resp = await finish(stack, browser, code, state)
            if case == "open-redirect":
                # Signed in, but sent home rather than to another site.
                assert resp.status == 302 and resp.headers["Location"] == "/"
                return
            assert resp.status in (400, 401), (case, resp.status)
            assert "tocsin_session" not in resp.cookies
            assert await me_status(stack, browser) == 401


async def test_the_client_secret_is_sealed_at_rest(stack):
    async with FakeIdp() as idp:
        await stack.start(config(idp), services=())
        stored = await stack.pool.fetchval("SELECT document::text FROM api_config_revisions")
        assert CLIENT_SECRET not in stored and "enc:v1:" in stored
