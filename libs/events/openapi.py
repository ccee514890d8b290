"""The route registry: each endpoint is declared once, with what it takes and answers, and that one
declaration both adds the aiohttp route and writes the OpenAPI 3.1 document. A path cannot be served and
missing from the spec, or documented and not served.

Schemas come from the msgspec structs that decode request bodies and encode answers
(`msgspec.json.schema_components`), so the spec says what the code does. It lives in the shared library so
that the intake, which shares the listener under `tocsin up`, declares its paths in the same registry.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

# A time with its offset: `format: date-time` in the spec, and msgspec refuses one without an offset.
Time = Annotated[datetime, msgspec.Meta(tz=True)]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REF = "#/components/schemas/{name}"


class ErrorBody(msgspec.Struct, kw_only=True):
    code: str
    message: str
    details: Any = None
    error_id: str | None = None


class Error(msgspec.Struct, kw_only=True):
    """Every error answer: `{"error": {"code", "message", "details"?}}`."""

    error: ErrorBody


@dataclass(frozen=True)
class Param:
    name: str
    where: Literal["path", "query", "header"] = "query"
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Endpoint:
    """One operation. `scope` is the token scope it needs (None: no token). `team` says where the team it
    acts on comes from (`path:team`, `body:team`, `incident`, `route`...) so access checks per team can be
    applied to every endpoint from this table; None is installation-wide."""

    method: str
    path: str
    handler: Handler
    summary: str
    scope: str | None = None
    team: str | None = None
    request: Any = None                       # a msgspec type, or None for no body
    request_content: str = "application/json"
    request_required: bool = True
    responses: dict[int, Any] = field(default_factory=lambda: {200: None})   # status -> type (None: no schema)
    content: str = "application/json"         # of the success answers
    errors: tuple[int, ...] = ()
    params: tuple[Param, ...] = ()
    tag: str = ""
    operation: str = ""                       # the operationId, when the handler's name is not unique

    @property
    def operation_id(self) -> str:
        return self.operation or getattr(self.handler, "__name__", "") or (
            self.method.lower() + re.sub(r"\W+", "_", self.path))


_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")
_TEXT = {"type": "string"}


def spec_path(path: str) -> str:
    """aiohttp's `/x/{name:regex}` as OpenAPI's `/x/{name}`."""
    return _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


class Registry:
    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def install(self, app: web.Application, endpoints: Iterable[Endpoint]) -> None:
        for endpoint in endpoints:
            if any(e.method == endpoint.method and e.path == endpoint.path for e in self.endpoints):
                raise ValueError(f"{endpoint.method} {endpoint.path} is declared twice")
            self.endpoints.append(endpoint)
            app.router.add_route(endpoint.method, endpoint.path, endpoint.handler)

    def spec(self, *, title: str = "Tocsin", version: str = "1", server: str = "") -> dict[str, Any]:
        types: list[Any] = [Error]
        for e in self.endpoints:
            if e.request is not None:
                types.append(e.request)
            types += [t for t in e.responses.values() if t is not None]
        schemas, components = msgspec.json.schema_components(types, ref_template=REF)
        schema_of = dict(zip(map(id, types), schemas, strict=True))
        paths: dict[str, dict[str, Any]] = {}
        for e in self.endpoints:
            paths.setdefault(spec_path(e.path), {})[e.method.lower()] = self._operation(e, schema_of)
        doc: dict[str, Any] = {
            "openapi": "3.1.0",
            "info": {"title": title, "version": version},
            "paths": paths,
            "components": {"schemas": components, "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer",
                          "description": "a personal API token (`tocsin token create`)"},
                "session": {"type": "apiKey", "in": "cookie", "name": "tocsin_session",
                            "description": "a signed-in browser; writes also send X-CSRF-Token"}}},
        }
        if server:
            doc["servers"] = [{"url": server}]
        return doc

    def _operation(self, e: Endpoint, schema_of: dict[int, Any]) -> dict[str, Any]:
        params = [{"name": p.name, "in": p.where, "required": p.required or p.where == "path",
                   "schema": p.schema, **({"description": p.description} if p.description else {})}
                  for p in e.params]
        declared = {p.name for p in e.params if p.where == "path"}
        params += [{"name": name, "in": "path", "required": True, "schema": _TEXT}
                   for name in _PATH_PARAM.findall(e.path) if name not in declared]
        op: dict[str, Any] = {"operationId": e.operation_id, "summary": e.summary, "parameters": params,
                              "responses": {}}
        if e.tag:
            op["tags"] = [e.tag]
        if e.scope is not None:   # "" is any caller, with no particular scope
            op["security"] = [{"token": []}, {"session": []}]
            op["description"] = (f"Scope `{e.scope}`." if e.scope else "Any caller; no scope needed.") + (
                f" Team from {e.team}." if e.team else "")
        if e.request is not None:
            op["requestBody"] = {"required": e.request_required, "content": {e.request_content: {
                "schema": schema_of[id(e.request)]}}}
        for status, kind in e.responses.items():
            body: dict[str, Any] = {"description": _REASONS.get(status, "answer")}
            if kind is not None:
                body["content"] = {e.content: {"schema": schema_of[id(kind)]}}
            elif e.content != "application/json":
                body["content"] = {e.content: {"schema": _TEXT}}
            op["responses"][str(status)] = body
        errors = set(e.errors) | ({401, 403} if e.scope is not None else set())
        if e.request is not None:
            errors |= {413, 415, 422}
        if params and any(p["in"] == "query" for p in params):
            errors.add(422)
        for status in sorted(errors | {503}):
            op["responses"][str(status)] = {"description": _REASONS.get(status, "error"), "content": {
                "application/json": {"schema": schema_of[id(Error)]}}}
        return op


_REASONS = {200: "OK", 201: "created", 202: "accepted", 204: "no content", 401: "no or unknown token",
            403: "the token lacks the scope", 404: "not found", 409: "conflict", 413: "body too large",
            415: "unsupported content type", 422: "invalid input", 429: "rate limited",
            503: "starting up, or a dependency is down"}

REGISTRY = web.AppKey("tocsin_routes", Registry)


def registry(app: web.Application) -> Registry:
    """The app's registry (created on first use), so every module that adds routes shares one."""
    if REGISTRY not in app:
        app[REGISTRY] = Registry()
    return app[REGISTRY]


def install(app: web.Application, endpoints: Iterable[Endpoint]) -> None:
    registry(app).install(app, endpoints)


# ------------------------------------------------------------------ bodies in and out

_JSON = msgspec.json.Encoder()


def respond(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """Encode an answer with msgspec: the struct that the spec documents is the one on the wire. Spaced
    like Python's json (`{"a": 1}`), as answers always were, so scripts that grep them keep working."""
    return web.Response(body=msgspec.json.format(_JSON.encode(value), indent=0), status=status,
                        content_type="application/json", headers=headers)


def decode_body(raw: bytes, kind: type[Any]) -> Any:
    """Decode and validate a JSON body into `kind`; a 422 names the field that is wrong."""
    from tocsin.events.web import ApiError
    if not raw.strip():
        raise ApiError(422, "a JSON body is required")
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        text = str(exc)
        m = re.search(r" - at `\$(.*)`$", text)
        path = m.group(1).lstrip(".") if m else ""
        raise ApiError(422, text[: m.start()] if m else text, details={"path": path}) from None
    except msgspec.DecodeError as exc:
        raise ApiError(422, f"body is not valid JSON: {exc}") from None
