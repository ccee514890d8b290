from __future__ import annotations

import asyncio

from tocsin.events.observability import setup_logging, setup_tracing
from tocsin.router.app import run
from tocsin.router.settings import Settings


def main() -> None:
    setup_logging("router")
    setup_tracing("router")
    asyncio.run(run(Settings.from_env()))


if __name__ == "__main__":
    main()
