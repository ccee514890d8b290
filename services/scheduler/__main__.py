from __future__ import annotations

import asyncio

from tocsin.events.observability import setup_logging, setup_tracing
from tocsin.scheduler.app import run
from tocsin.scheduler.settings import Settings


def main() -> None:
    setup_logging("scheduler")
    setup_tracing("scheduler")
    asyncio.run(run(Settings.from_env()))


if __name__ == "__main__":
    main()
