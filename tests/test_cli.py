"""`tocsin up` as a user runs it: embedded NATS and Postgres, the README tour, restart, clean stop."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
TOCSIN = [sys.executable, "-m", "tocsin"]


class Up:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("TOCSIN_") or k == "TOCSIN_PG_FALLBACK_DIR"}
        self.env.update(TOCSIN_HTTP=f"127.0.0.1:{port}", TOCSIN_DATA_DIR=str(data_dir))
        self.out = data_dir.parent / f"up-{port}.log"

    def start(self) -> Up:
        self.log = open(self.out, "ab")
        self.proc = subprocess.Popen([*TOCSIN, "up", "--config", "examples/tocsin.yaml"], cwd=ROOT,
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while "tocsin is up" not in self.text():
            assert self.proc.poll() is None, self.text()
            assert time.monotonic() < deadline, self.text()
            time.sleep(0.1)
        return self

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        self.log.close()
        return code

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*TOCSIN, *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=60)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def tour_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    tour = readme.split("## Five-minute tour", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", tour, re.S)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # tmp_path lies in a folder private to root: as root, the embedded Postgres (which runs as the
    # `postgres` user) is kept in the fallback folder instead, which this test points at a folder of its own.
    fallback = Path(tempfile.mkdtemp(prefix="tocsin-pg-fallback-"))
    fallback.chmod(0o755)
    monkeypatch.setenv("TOCSIN_PG_FALLBACK_DIR", str(fallback))
    yield tmp_path / "data"
    shutil.rmtree(fallback, ignore_errors=True)


def test_up_runs_the_readme_tour_restarts_with_its_data_and_stops_cleanly(data_dir):
    port = free_port()
    up = Up(data_dir, port).start()
    try:
        runtime = json.loads((data_dir / "runtime.json").read_text())
        assert runtime["pid"] == up.proc.pid
        nats_port = int(runtime["nats_url"].rsplit(":", 1)[1])
        pg_port = int(runtime["database_url"].split(":")[-1].split("/")[0])

        # a second `tocsin up` in the same folder is refused; other commands find the running one
        second = up.run("up", "--config", "examples/tocsin.yaml")
        assert second.returncode == 1 and "another `tocsin up`" in second.stdout
        check = up.run("migrate", "--check")
        assert check.returncode == 0 and "up to date" in check.stdout

        script = "set -euo pipefail\n" + "\nsleep 1.5\n".join(tour_blocks())
        script = script.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        tour = subprocess.run(["bash", "-c", script], cwd=ROOT, env=up.env, capture_output=True, text=True,
                              timeout=120)
        assert tour.returncode == 0, tour.stderr + tour.stdout
        assert '"accepted": 1' in tour.stdout
        assert '"username": "admin", "name": "", "email": "admin@example.com", "role": "admin"' in tour.stdout
        assert '"status": "acknowledged"' in tour.stdout
        assert '"status": "resolved"' in tour.stdout.rsplit('"items"', 1)[1]
        assert "=== PAGE to " in up.text() and "#1 [CRITICAL] Disk /var is 95% full" in up.text()
    finally:
        code = up.stop()
    assert code == 0
    assert not (data_dir / "runtime.json").exists()
    assert not port_open(port) and not port_open(nats_port) and not port_open(pg_port)

    # the data survives a restart
    again = Up(data_dir, free_port()).start()
    try:
        token = again.run("token", "create", "alice").stdout.strip()
        import urllib.request
        request = urllib.request.Request(f"http://127.0.0.1:{again.port}/api/v1/incidents",
                                         headers={"Authorization": f"Bearer {token}"})
        items = json.loads(urllib.request.urlopen(request, timeout=10).read())["items"]
        assert [(i["number"], i["status"]) for i in items] == [(1, "resolved")]
        # The administrator that create-admin made (in no config) is still there, and the trail recorded the
        # tour: the config applied at start, the CLI's token and administrator, the sign-in, the acknowledge.
        admin = again.run("token", "create", "admin", "--scope", "admin").stdout.strip()
        request = urllib.request.Request(f"http://127.0.0.1:{again.port}/api/v1/audit?limit=500",
                                         headers={"Authorization": f"Bearer {admin}"})
        trail = json.loads(urllib.request.urlopen(request, timeout=10).read())["items"]
        done = {(i["action"], i["via"]) for i in trail}
        assert {("config.applied", "file"), ("token.created", "cli"), ("user.created", "cli"),
                ("session.started", "password"), ("incident.acknowledged", "token")} <= done, done
    finally:
        assert again.stop() == 0


def test_commands_without_a_running_instance_say_what_to_do(data_dir):
    data_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    done = subprocess.run([*TOCSIN, "--data-dir", str(data_dir), "token", "create", "alice"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "no running `tocsin up`" in done.stderr and "TOCSIN_NATS_URL" in done.stderr
    bad = subprocess.run([*TOCSIN, "up", "--config", "no-such-file.yaml"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "config file not found" in bad.stderr
