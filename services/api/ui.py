"""The web UI: static files from `ui/`, served by the API with no build step.

Files are read once at start. Their URLs carry a hash of the whole folder (`/ui/<hash>/app.js`), so a
browser may keep them for a year, and a new version of Tocsin is new URLs; the page itself (`index.html`,
which names the hash) is never cached. Modules import each other by relative path, so they all stay under
the same hash. Every page path of the client-side router (history API) answers with the same page, so a
link such as `<public URL>/incidents/<id>` in a page works when opened directly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath

from aiohttp import web

from tocsin.events.openapi import Endpoint, Param
from tocsin.events.web import ApiError

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
}

# No inline script or style anywhere: everything comes from this origin, nothing may frame the UI.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
IMMUTABLE = "public, max-age=31536000, immutable"

# The client-side router's pages. Explicit, so no catch-all shadows an API path added later.
PAGES: tuple[str, ...] = ("/", "/signin", "/incidents", "/incidents/{id}", "/calendar", "/profile", "/teams",
                          "/routes", "/people", "/silences", "/channels")


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


class Assets:
    """Every file of the ui folder, in memory (the whole UI is a few dozen kilobytes)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + files[name] + b"\0")
        self.version = digest.hexdigest()[:12]
        self.files = {
            name: Asset(body, TYPES[PurePosixPath(name).suffix],
                        '"' + hashlib.sha256(body).hexdigest()[:16] + '"')
            for name, body in files.items() if PurePosixPath(name).suffix in TYPES}
        page = files.get("index.html", b"<!doctype html><title>Tocsin</title><p>The UI files are missing.")
        self.page = page.replace(b"{{ASSETS}}", f"/ui/{self.version}".encode())

    @classmethod
    def load(cls) -> Assets:
        root = resources.files("tocsin.api") / "ui"
        files: dict[str, bytes] = {}

        def walk(folder: resources.abc.Traversable, prefix: str) -> None:
            if not folder.is_dir():
                return
            for entry in folder.iterdir():
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    walk(entry, f"{prefix}{entry.name}/")
                else:
                    files[prefix + entry.name] = entry.read_bytes()
        walk(root, "")
        return cls(files)


ASSETS = web.AppKey("tocsin_ui_assets", Assets)


async def page(request: web.Request) -> web.Response:
    """The one HTML page; the client-side router draws whichever path was asked for."""
    assets = request.app[ASSETS]
    return web.Response(body=assets.page, content_type="text/html", charset="utf-8",
                        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


async def asset(request: web.Request) -> web.Response:
    assets = request.app[ASSETS]
    name = request.match_info["name"]
    found = assets.files.get(name)
    if found is None or name == "index.html":
        raise ApiError(404, f"no such file {name!r}")
    # An older page may ask for an older hash: answer with today's file, but let nobody keep it.
    cache = IMMUTABLE if request.match_info["version"] == assets.version else "no-cache"
    headers = {**SECURITY_HEADERS, "Cache-Control": cache, "ETag": found.etag}
    if request.headers.get("If-None-Match") == found.etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=found.body, headers={**headers, "Content-Type": found.content_type})


async def service_worker(request: web.Request) -> web.Response:
    """The Web Push service worker, at the root so its scope is the whole UI (`/`). Never cached for long:
    browsers check it for updates themselves, and a new Tocsin must be able to replace it."""
    found = request.app[ASSETS].files.get("sw.js")
    if found is None:
        raise ApiError(404, "no service worker in this build")
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache", "ETag": found.etag, "Service-Worker-Allowed": "/"}
    if request.headers.get("If-None-Match") == found.etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=found.body, headers={**headers, "Content-Type": found.content_type})


def load(app: web.Application) -> None:
    """Read the UI files onto the app (once, at start)."""
    app[ASSETS] = Assets.load()


def _operation(path: str) -> str:
    return "ui_page_" + (path.strip("/").replace("/{id}", "_item").replace("/", "_") or "home")


# Declared in the route registry like every path (so the OpenAPI document lists exactly what is served).
ENDPOINTS = [
    *(Endpoint("GET", path, page, "The web UI's page (the client-side router draws this path)",
               content="text/html", tag="ui", operation=_operation(path),
               params=(Param("id", "path"),) if "{id}" in path else ())
      for path in PAGES),
    Endpoint("GET", "/ui/{version}/{name:.+}", asset, "The web UI's scripts, style and icon", content="text/plain",
             errors=(404,), tag="ui", params=(
                 Param("version", "path", description="the hash of the UI files the page names"),
                 Param("name", "path", description="a file, e.g. app.js or pages/home.js"))),
    Endpoint("GET", "/sw.js", service_worker, "The Web Push service worker (scope /)", content="text/javascript",
             errors=(404,), tag="ui"),
]
