from __future__ import annotations

from aiohttp import web

from tocsin.events.observability import setup_logging, setup_tracing
from tocsin.events.web import parse_listen
from tocsin.intake.app import create_app
from tocsin.intake.settings import Settings


def main() -> None:
    settings = Settings.from_env()
    setup_logging("intake")
    setup_tracing("intake")
    host, port = parse_listen(settings.listen, 8081)
    web.run_app(create_app(settings), host=host, port=port, print=None)


if __name__ == "__main__":
    main()
