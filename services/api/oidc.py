"""Sign-in through an OpenID Connect provider: authorization code flow with PKCE (RFC 7636).

`GET /api/v1/auth/oidc/login?next=/path` redirects to the provider with a fresh `state`, `nonce` and S256
`code_challenge`; the three (and the verifier) travel in a short-lived cookie signed with a key derived from
the installation key, so no server-side state is needed and a callback can only finish a sign-in that this
browser started. `GET /api/v1/auth/oidc/callback` checks `state`, exchanges the code (with the verifier and
the client secret, HTTP Basic), and verifies the ID token itself: RS256 signature against the provider's
JWKS, `iss`, `aud` (and `azp`), `exp`/`iat`, and `nonce`. The person is the user whose email is the token's
`email` claim (not when the provider says it is unverified), or, with `claim:` set to another claim, the user
of that name. Sign-in creates nobody: people come from the config or `tocsin user create-admin`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tocsin.api import users
from tocsin.api.access import caller_for
from tocsin.api.context import Context
from tocsin.api.login import open_session, set_cookie
from tocsin.events.config import Oidc
from tocsin.events.openapi import Endpoint, Param
from tocsin.events.signing import BadSignature, sign, verify
from tocsin.events.web import ApiError

log = logging.getLogger("tocsin.api.oidc")

COOKIE = "tocsin_oidc"
PURPOSE = "oidc-login"
LOGIN_TTL = 600            # seconds a person has at the provider before the sign-in must start again
LEEWAY = 60                # clock skew allowed on exp / iat
DISCOVERY_TTL = 3600
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)


class Refused(Exception):
    """The provider's answer does not hold up; the message says why (logged, and shown)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _settings(ctx: Context) -> Oidc:
    oidc = ctx.config.directory.config.security.oidc
    if oidc is None:
        raise ApiError(404, "OpenID Connect sign-in is not configured (security.oidc)", code="oidc_not_configured")
    return oidc


def redirect_uri(ctx: Context) -> str:
    return f"{ctx.settings.public_url}/api/v1/auth/oidc/callback"


async def _get_json(url: str) -> Any:
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http, http.get(url) as resp:
        if resp.status != 200:
            raise Refused(f"{url} answered {resp.status}")
        return await resp.json(content_type=None)


async def discovery(ctx: Context, oidc: Oidc, *, fresh: bool = False) -> dict[str, Any]:
    """The provider's metadata (cached an hour), checked to be about the configured issuer."""
    cache: dict[str, tuple[float, dict[str, Any]]] = ctx.extra.setdefault("oidc", {})  # type: ignore[assignment]
    hit = cache.get(oidc.issuer)
    if hit and not fresh and hit[0] > time.monotonic():
        return hit[1]
    meta = await _get_json(oidc.issuer.rstrip("/") + "/.well-known/openid-configuration")
    if not isinstance(meta, dict) or meta.get("issuer") != oidc.issuer:
        raise Refused("the provider's discovery document names another issuer")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(meta.get(key), str):
            raise Refused(f"the provider's discovery document has no {key}")
    cache[oidc.issuer] = (time.monotonic() + DISCOVERY_TTL, meta)
    return meta


def _safe_next(value: str) -> str:
    # Only a path on this site: never `//evil.example` or an absolute URL (an open redirect).
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


async def start(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    oidc = _settings(ctx)
    try:
        meta = await discovery(ctx, oidc)
    except (Refused, aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise ApiError(502, f"the identity provider is not reachable: {exc}", code="oidc_unavailable") from None
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
    query = urlencode({"response_type": "code", "client_id": oidc.client_id, "redirect_uri": redirect_uri(ctx),
                       "scope": " ".join(oidc.scopes), "state": state, "nonce": nonce,
                       "code_challenge": challenge, "code_challenge_method": "S256"})
    response = web.Response(status=302, headers={"Location": f"{meta['authorization_endpoint']}?{query}",
                                                 "Cache-Control": "no-store"})
    cookie = sign(ctx.settings.secret_key, PURPOSE, {"s": state, "n": nonce, "v": verifier,
                                                     "next": _safe_next(request.query.get("next", "/"))},
                  LOGIN_TTL)
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="Lax", path="/api/v1/auth/oidc",
                        secure=ctx.settings.public_url.startswith("https://") or request.secure, max_age=LOGIN_TTL)
    return response


async def callback(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    oidc = _settings(ctx)
    try:
        pending = verify(ctx.settings.secret_key, PURPOSE, request.cookies.get(COOKIE, ""))
    except BadSignature:
        raise ApiError(400, "no sign-in in progress in this browser (or it took too long); start again",
                       code="oidc_refused") from None
    try:
        if "error" in request.query:
            raise Refused(f"the provider said {request.query['error']}: {request.query.get('error_description', '')}")
        if not hmac.compare_digest(str(pending.get("s", "")).encode(), request.query.get("state", "").encode()):
            raise Refused("state does not match")
        code = request.query.get("code", "")
        if not code:
            raise Refused("no code")
        meta = await discovery(ctx, oidc)
        id_token = await _exchange(ctx, oidc, meta, code, str(pending["v"]))
        claims = await verified_claims(ctx, oidc, meta, id_token, nonce=str(pending["n"]))
        person = await _person(ctx, oidc, claims)
    except (Refused, aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
        log.warning("OIDC sign-in refused: %s", exc)
        raise ApiError(401, f"sign-in refused: {exc}", code="oidc_refused") from None
    caller = await caller_for(ctx.pool, ctx.config.directory.config, person, via="session")
    if caller is None:
        raise ApiError(401, "sign-in refused: no such user", code="oidc_refused")
    response = web.Response(status=302, headers={"Location": _safe_next(str(pending.get("next", "/")))})
    response.del_cookie(COOKIE, path="/api/v1/auth/oidc")
    session_id, _ = await open_session(request, caller, via="oidc")
    set_cookie(request, response, session_id)
    return response


async def _exchange(ctx: Context, oidc: Oidc, meta: dict[str, Any], code: str, verifier: str) -> str:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri(ctx),
            "code_verifier": verifier, "client_id": oidc.client_id}
    headers = {"Accept": "application/json"}
    if oidc.client_secret:
        # client_secret_basic: each part form-encoded first (RFC 6749 section 2.3.1). Sealed at rest.
        secret = ctx.sealer.unseal(oidc.client_secret)
        pair = f"{quote(oidc.client_id, safe='')}:{quote(secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http, \
            http.post(meta["token_endpoint"], data=form, headers=headers) as resp:
        body = await resp.json(content_type=None)
        if resp.status != 200 or not isinstance(body, dict):
            raise Refused(f"the token endpoint answered {resp.status}")
    token = body.get("id_token")
    if not isinstance(token, str):
        raise Refused("the token endpoint sent no id_token")
    return token


async def verified_claims(ctx: Context, oidc: Oidc, meta: dict[str, Any], token: str, *, nonce: str) -> dict[
        str, Any]:
    """The claims of an ID token whose signature and contents all hold; Refused otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        raise Refused("the ID token is not a JWS")
    try:
        header = json.loads(_unb64url(parts[0]))
        claims = json.loads(_unb64url(parts[1]))
        signature = _unb64url(parts[2])
    except (ValueError, TypeError):
        raise Refused("the ID token is malformed") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise Refused("the ID token is malformed")
    if header.get("alg") != "RS256":   # never "none", never an HMAC keyed with something public
        raise Refused(f"ID token algorithm {header.get('alg')!r} is not RS256")
    key = await _signing_key(ctx, oidc, meta, str(header.get("kid", "")))
    try:
        key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise Refused("bad ID token signature") from None
    now = time.time()
    if claims.get("iss") != oidc.issuer:
        raise Refused("ID token issuer does not match")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if oidc.client_id not in audiences:
        raise Refused("ID token is for another client")
    if len(audiences) > 1 and claims.get("azp") != oidc.client_id:
        raise Refused("ID token azp does not name this client")
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] < now - LEEWAY:
        raise Refused("ID token expired")
    if isinstance(claims.get("iat"), int | float) and claims["iat"] > now + LEEWAY:
        raise Refused("ID token issued in the future")
    if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
        raise Refused("nonce does not match")
    return claims


async def _signing_key(ctx: Context, oidc: Oidc, meta: dict[str, Any], kid: str) -> rsa.RSAPublicKey:
    """The provider's RSA key `kid` from its JWKS; fetched again once when unknown (keys rotate)."""
    for attempt in range(2):
        jwks = await _get_json(meta["jwks_uri"]) if attempt or "jwks" not in meta else meta["jwks"]
        meta["jwks"] = jwks
        keys = [k for k in (jwks.get("keys", []) if isinstance(jwks, dict) else [])
                if isinstance(k, dict) and k.get("kty") == "RSA" and k.get("use", "sig") == "sig"
                and (not kid or k.get("kid") == kid)]
        if len(keys) == 1 or (keys and not kid):
            n = int.from_bytes(_unb64url(keys[0]["n"]), "big")
            e = int.from_bytes(_unb64url(keys[0]["e"]), "big")
            return rsa.RSAPublicNumbers(e, n).public_key()
    raise Refused(f"no signing key {kid!r} in the provider's JWKS")


async def _person(ctx: Context, oidc: Oidc, claims: dict[str, Any]) -> str:
    config = ctx.config.directory.config
    value = claims.get(oidc.claim)
    if not isinstance(value, str) or not value:
        raise Refused(f"the ID token has no {oidc.claim} claim")
    if oidc.claim == "email":
        if claims.get("email_verified") is False:
            raise Refused("the provider says this email is not verified")
        person = await users.find_by_email(ctx.pool, config, value)
    else:
        person = await users.find(ctx.pool, config, value)
    if person is None:
        raise Refused(f"no user has {oidc.claim} {value!r}")
    return person.username


ENDPOINTS = [
    Endpoint("GET", "/api/v1/auth/oidc/login", start, "Single sign-on: go to the identity provider",
             responses={302: None}, errors=(404, 502), params=(Param("next", description="a path to return to"),),
             tag="sign-in", operation="oidc_login"),
    Endpoint("GET", "/api/v1/auth/oidc/callback", callback, "Single sign-on: back from the identity provider",
             responses={302: None}, errors=(400, 401, 404), params=(Param("code"), Param("state")), tag="sign-in",
             operation="oidc_callback"),
]
