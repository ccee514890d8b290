from __future__ import annotations

import asyncio
import sys

from tocsin.events.observability import setup_logging, setup_tracing
from tocsin.notifier.app import run
from tocsin.notifier.settings import Settings


def main(kinds: str = "") -> None:
    setup_logging("notifier")
    setup_tracing("notifier")
    asyncio.run(run(Settings.from_env(kinds)))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
