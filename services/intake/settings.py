from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

DEFAULT_SMTP = "127.0.0.1:2525"
DEFAULT_UDP = "127.0.0.1:9999"


@dataclass(frozen=True)
class Settings:
    nats_url: str = "nats://127.0.0.1:4222"
    listen: str = "127.0.0.1:8081"
    max_body_bytes: int = 1024 * 1024
    max_raw_bytes: int = 64 * 1024       # of each alert's own payload kept for the incident log
    rate_per_minute: int = 6000          # per route, when the route sets none: 100 alerts/s
    # Alerts the router may have waiting (not yet decided) before HTTP answers 503 and mail 451; 0: no bound.
    # 20,000 is ~16 s of work for a router of its own, a couple of minutes for `tocsin up` under full load.
    max_backlog: int = 20_000
    # Mail and UDP heartbeats: "" means the default address, skipped with a warning when something else
    # holds it; an address given explicitly must be free; "off" turns the listener off.
    smtp_listen: str = ""
    smtp_max_bytes: int = 1024 * 1024    # a whole message, headers and attachments included
    smtp_tls_cert: str = ""              # both set: STARTTLS is offered
    smtp_tls_key: str = ""
    smtp_require_tls: bool = False       # refuse mail until the client has started TLS
    smtp_hostname: str = ""              # the name in the greeting; default the machine's host name
    udp_listen: str = ""

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            nats_url=os.environ.get("TOCSIN_NATS_URL", cls.nats_url),
            listen=os.environ.get("TOCSIN_INTAKE_HTTP", cls.listen),
            max_body_bytes=int(os.environ.get("TOCSIN_INTAKE_MAX_BODY", cls.max_body_bytes)),
            max_backlog=int(os.environ.get("TOCSIN_INTAKE_MAX_BACKLOG", cls.max_backlog)),
            smtp_listen=os.environ.get("TOCSIN_SMTP", cls.smtp_listen),
            smtp_max_bytes=int(os.environ.get("TOCSIN_SMTP_MAX_BYTES", cls.smtp_max_bytes)),
            smtp_tls_cert=os.environ.get("TOCSIN_SMTP_TLS_CERT", cls.smtp_tls_cert),
            smtp_tls_key=os.environ.get("TOCSIN_SMTP_TLS_KEY", cls.smtp_tls_key),
            smtp_require_tls=os.environ.get("TOCSIN_SMTP_REQUIRE_TLS", "") in ("1", "true", "yes"),
            smtp_hostname=os.environ.get("TOCSIN_SMTP_HOSTNAME", cls.smtp_hostname),
            udp_listen=os.environ.get("TOCSIN_UDP", cls.udp_listen),
        )


@dataclass(frozen=True)
class Door:
    """Where one listener binds, and whether the address was asked for (else a taken one is skipped)."""

    host: str
    port: int
    explicit: bool

    def __str__(self) -> str:
        return address_of((self.host, self.port))


def door(value: str, default: str) -> Door | None:
    """`TOCSIN_SMTP` / `TOCSIN_UDP` as written: "" the default, "off" none, else HOST:PORT (or a port)."""
    value = value.strip()
    if value.lower() == "off":
        return None
    explicit = bool(value)
    host, sep, port = (value or default).rpartition(":")
    if not sep:
        host, port = "127.0.0.1", value
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not a listen address: {value!r} (use HOST:PORT or off)")
    return Door(host=host.strip("[]") or "127.0.0.1", port=int(port), explicit=explicit)


def address_of(sockname: Any) -> str:
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
