"""One module per monitoring tool; each turns the tool's own body into `Normalized` alerts."""

from __future__ import annotations

from collections.abc import Callable

from tocsin.intake.sources import alertmanager
from tocsin.intake.sources.base import Normalized, PayloadError

Parser = Callable[[bytes], list[Normalized]]

PARSERS: dict[str, Parser] = {
    "alertmanager": alertmanager.parse,
}

__all__ = ["PARSERS", "Normalized", "Parser", "PayloadError"]
