"""`GET /api/openapi.json` (generated from the route registry) and Swagger UI at `/docs`, from files
vendored in `static/swagger/` so the page works on a machine without internet access."""

from __future__ import annotations

from importlib import resources
from typing import Any

from aiohttp import web

from tocsin.events import openapi
from tocsin.events.openapi import Endpoint, Param
from tocsin.events.web import ApiError

ASSETS = {"swagger-ui-bundle.js": "application/javascript", "swagger-ui.css": "text/css"}
VERSION = "1"

PAGE = """<!doctype html>
<html lang=en><head><meta charset=utf-8><title>Tocsin API</title>
<meta name=viewport content="width=device-width,initial-scale=1">
<link rel=stylesheet href="/docs/swagger-ui.css"></head>
<body><div id=swagger-ui></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true});</script>
</body></html>
"""


def spec(app: web.Application) -> dict[str, Any]:
    return openapi.registry(app).spec(title="Tocsin", version=VERSION)


async def openapi_json(request: web.Request) -> web.Response:
    return openapi.respond(spec(request.app))


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html",
                        headers={"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                                            "style-src 'self' 'unsafe-inline'; "
                                                            "script-src 'self' 'unsafe-inline'"})


async def docs_asset(request: web.Request) -> web.Response:
    name = request.match_info["file"]
    if name not in ASSETS:
        raise ApiError(404, "no such file")
    data = (resources.files("tocsin.api") / "static" / "swagger" / name).read_bytes()
    return web.Response(body=data, content_type=ASSETS[name], headers={"Cache-Control": "public, max-age=86400"})


ENDPOINTS = [
    Endpoint("GET", "/api/openapi.json", openapi_json, "This document", tag="docs"),
    Endpoint("GET", "/docs", docs_page, "Swagger UI", content="text/html", tag="docs"),
    Endpoint("GET", "/docs/{file}", docs_asset, "Swagger UI's script and style", content="text/plain",
             errors=(404,), params=(Param("file", "path", schema={"enum": list(ASSETS)}),), tag="docs"),
]
