"""How a second `tocsin` command finds the running `tocsin up`: the data dir's runtime.json."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Runtime:
    nats_url: str
    database_url: str
    http: str
    pid: int


def runtime_file(data_dir: Path) -> Path:
    return data_dir / "runtime.json"


def write(data_dir: Path, runtime: Runtime) -> None:
    tmp = runtime_file(data_dir).with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(runtime)))
    tmp.replace(runtime_file(data_dir))


def read(data_dir: Path) -> Runtime | None:
    try:
        data = json.loads(runtime_file(data_dir).read_text())
        runtime = Runtime(**data)
    except (OSError, ValueError, TypeError):
        return None
    try:
        os.kill(runtime.pid, 0)
    except OSError:
        return None   # left behind by an instance that is gone
    return runtime


def remove(data_dir: Path) -> None:
    runtime_file(data_dir).unlink(missing_ok=True)


class NotFound(Exception):
    pass


def urls(data_dir: Path) -> tuple[str, str]:
    """(nats_url, database_url): from the environment, else from a running `tocsin up` in the data dir."""
    nats_url = os.environ.get("TOCSIN_NATS_URL", "")
    database_url = os.environ.get("TOCSIN_DATABASE_URL", "")
    if nats_url and database_url:
        return nats_url, database_url
    found = read(data_dir)
    if found is None:
        raise NotFound(
            f"no running `tocsin up` found in {data_dir} and TOCSIN_NATS_URL / TOCSIN_DATABASE_URL are not set; "
            "start `tocsin up` here (or pass --data-dir), or set both variables")
    return nats_url or found.nats_url, database_url or found.database_url
