"""What every Tocsin HTTP listener answers alike: `{"error": {...}}` bodies, never a stack trace."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

log = logging.getLogger("tocsin.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
          415: "unsupported_media_type", 422: "unprocessable", 429: "rate_limited",
          503: "unavailable"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, code: str | None = None,
                 details: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.details = details
        self.headers = headers


def error_response(status: int, message: str, *, code: str | None = None, details: Any = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    body: dict[str, Any] = {"code": code or _CODES.get(status, "error"), "message": message}
    if details is not None:
        body["details"] = details
    return web.json_response({"error": body}, status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _unread_closes(request, error_response(exc.status, exc.message, code=exc.code,
                                                      details=exc.details, headers=exc.headers))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _unread_closes(request, error_response(exc.status, exc.reason or "error", headers={
            k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}))
    except Exception:
        error_id = uuid.uuid4().hex[:12]
        log.exception("unhandled error on %s %s", request.method, request.path, extra={"error_id": error_id})
        return web.json_response(
            {"error": {"code": "internal", "message": "internal error", "error_id": error_id}}, status=500)


def _unread_closes(request: web.Request, response: web.Response) -> web.Response:
    """Refused before its body was read (401, 403, 413, ...): close the connection after answering, rather
    than keep it open on a body nobody will read (a shutdown would otherwise wait on it)."""
    if request.body_exists and not request.content.at_eof():
        response.force_close()
    return response


def parse_listen(value: str, default_port: int) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host:
        return value or "127.0.0.1", default_port
    return host.strip("[]"), int(port)


JSON_TYPES = frozenset({"application/json", "text/plain", "application/octet-stream", ""})


async def read_json_body(request: web.Request, limit: int, *, any_type: bool = False) -> bytes:
    """The body, refusing more than `limit` bytes without reading them all (413), and non-JSON types (415)
    unless `any_type` (small action bodies that `curl -d` sends as a form)."""
    ctype = request.content_type
    readable = ctype in JSON_TYPES or ctype.endswith("+json")
    if not any_type and request.body_exists and not readable:
        raise ApiError(415, f"unsupported content type {ctype!r}; send application/json")
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def limit_param(query: Mapping[str, str], default: int = 50, most: int = 500) -> int:
    """The `limit` of a list request: a number from 1 to `most`, else 422 naming the parameter."""
    try:
        limit = int(query.get("limit", str(default)))
    except ValueError:
        raise ApiError(422, "limit must be a number", details={"path": "limit"}) from None
    if not 1 <= limit <= most:
        raise ApiError(422, f"limit must be between 1 and {most}", details={"path": "limit"})
    return limit
