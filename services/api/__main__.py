from __future__ import annotations

from aiohttp import web

from tocsin.api.app import create_app
from tocsin.api.settings import Settings
from tocsin.events.observability import setup_logging, setup_tracing
from tocsin.events.web import parse_listen


def main() -> None:
    settings = Settings.from_env()
    setup_logging("api")
    setup_tracing("api")
    host, port = parse_listen(settings.listen, 8080)
    web.run_app(create_app(settings), host=host, port=port, print=None)


if __name__ == "__main__":
    main()
