"""The `tocsin` command: the composition root, the only code that imports every service."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from tocsin import runtime
from tocsin.events import keys

USAGE_ERROR = 2


def _connect_env(data_dir: Path) -> None:
    """Point a service at the running `tocsin up` of the data dir unless the URLs are set."""
    nats_url, database_url = runtime.urls(data_dir)
    os.environ.setdefault("TOCSIN_NATS_URL", nats_url)
    os.environ.setdefault("TOCSIN_DATABASE_URL", database_url)
    _key_from(data_dir)


def _key_from(data_dir: Path) -> None:
    """Use the data dir's secret key (that `tocsin up` made) unless TOCSIN_SECRET_KEY is set."""
    key_file = data_dir / keys.KEY_FILE
    if not os.environ.get(keys.KEY_ENV) and key_file.is_file():
        os.environ[keys.KEY_ENV] = key_file.read_text().strip()


def cmd_up(args: argparse.Namespace) -> int:
    from tocsin.events.observability import setup_logging, setup_tracing
    from tocsin.up import up
    setup_logging("up", os.environ.get("TOCSIN_LOG_LEVEL", "INFO"))
    setup_tracing("up")
    if args.config and not Path(args.config).is_file():
        print(f"config file not found: {args.config}", file=sys.stderr)
        return USAGE_ERROR
    if args.config:
        rc = cmd_config_check(argparse.Namespace(file=args.config, quiet=True))
        if rc:
            return rc
    return up(os.path.abspath(args.config) if args.config else "", Path(args.data_dir))


def cmd_service(args: argparse.Namespace) -> int:
    if not (os.environ.get("TOCSIN_NATS_URL") and (args.service in ("intake", "router", "notifier")
                                                    or os.environ.get("TOCSIN_DATABASE_URL"))):
        _connect_env(Path(args.data_dir))
    if args.service in ("notifier", "api") and not os.environ.get(keys.KEY_ENV):
        # No built-in key to fall back on: signed links and sessions would be forgeable.
        print(f"no secret key: set {keys.KEY_ENV} (at least {keys.MIN_KEY_CHARS} characters), the same for every "
              "api and notifier process", file=sys.stderr)
        return USAGE_ERROR
    if args.service == "intake":
        from tocsin.intake.__main__ import main as intake_main
        intake_main()
    elif args.service == "router":
        from tocsin.router.__main__ import main as router_main
        router_main()
    elif args.service == "scheduler":
        from tocsin.scheduler.__main__ import main as scheduler_main
        scheduler_main()
    elif args.service == "notifier":
        from tocsin.notifier.__main__ import main as notifier_main
        notifier_main(args.kinds or "")
    elif args.service == "api":
        from tocsin.api.__main__ import main as api_main
        api_main()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from tocsin.up import migrate_all, pending_all
    _, database_url = runtime.urls(Path(args.data_dir)) if not os.environ.get("TOCSIN_DATABASE_URL") else (
        "", os.environ["TOCSIN_DATABASE_URL"])
    if args.check:
        missing = asyncio.run(pending_all(database_url))
        if missing:
            print("schema is behind; pending migrations:\n  " + "\n  ".join(missing))
            return 1
        print("schema is up to date")
        return 0
    applied = asyncio.run(migrate_all(database_url))
    print("applied:\n  " + "\n  ".join(applied) if applied else "schema is up to date")
    return 0


def _config_errors(headline: str, exc: Exception) -> int:
    print(headline, file=sys.stderr)
    for path, message in getattr(exc, "errors", []):
        print(f"  {path or '(top)'}: {message}", file=sys.stderr)
    return 1


def cmd_config_check(args: argparse.Namespace) -> int:
    from tocsin.events.config import ConfigError, parse_config, warnings
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return USAGE_ERROR
    try:
        config = parse_config(data)
    except ConfigError as exc:
        return _config_errors(f"{args.file}: {len(exc.errors)} error(s); nothing was applied", exc)
    for path, message in warnings(config):
        print(f"  warning: {path}: {message}", file=sys.stderr)
    if not getattr(args, "quiet", False):
        print(f"{args.file}: ok ({len(config.users)} users, {len(config.teams)} teams, "
              f"{len(config.routes)} routes, {len(config.channels)} channels)")
    return 0


def _sealer(data_dir: Path):  # type: ignore[no-untyped-def]
    """Secrets are sealed with the installation's key: TOCSIN_SECRET_KEY, else the data dir's."""
    from tocsin.events.sealing import Sealer
    if os.environ.get(keys.KEY_ENV) or not (data_dir / keys.KEY_FILE).is_file():
        return Sealer.from_env()   # MissingSecretKey when neither: never seal with a made-up key
    return Sealer(keys.secret_key(data_dir))


async def _with_services(data_dir: Path, work):  # type: ignore[no-untyped-def]
    import asyncpg

    from tocsin.events.bus import Bus
    nats_url, database_url = runtime.urls(data_dir)
    bus = await Bus.connect(nats_url, "tocsin-cli")
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        await bus.ensure_streams()
        return await work(bus, pool)
    finally:
        await pool.close()
        await bus.close()


def cmd_config_apply(args: argparse.Namespace) -> int:
    from tocsin.api import config_store
    from tocsin.events.config import ConfigError, read_config
    try:
        config = read_config(Path(args.file).read_bytes())
    except OSError as exc:
        print(f"cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return USAGE_ERROR
    except ConfigError as exc:
        return _config_errors(f"{args.file}: {len(exc.errors)} error(s); nothing was applied", exc)

    async def work(bus, pool):  # type: ignore[no-untyped-def]
        sealer = _sealer(Path(args.data_dir))
        return await config_store.apply(pool, bus, config, by=f"cli:{os.environ.get('USER', '')}", sealer=sealer)
    try:
        result = asyncio.run(_with_services(Path(args.data_dir), work))
    except ConfigError as exc:
        return _config_errors("the config, merged with what is applied, has errors; nothing was applied", exc)
    print(f"applied revision {result.revision}" if result.changed else f"unchanged (revision {result.revision})")
    for route, token in result.new_tokens.items():
        print(f"route {route}: new intake token {token}  (shown once; keep it)")
    return 0


def cmd_config_export(args: argparse.Namespace) -> int:
    import yaml

    from tocsin.api import config_store
    from tocsin.events.config import redacted

    async def work(bus, pool):  # type: ignore[no-untyped-def]
        async with pool.acquire() as conn:
            return await config_store.current(conn, _sealer(Path(args.data_dir)))
    _, config = asyncio.run(_with_services(Path(args.data_dir), work))
    sys.stdout.write(yaml.safe_dump(redacted(config), sort_keys=False))
    return 0


def cmd_projections_rebuild(args: argparse.Namespace) -> int:
    from tocsin.api.projector import rebuild

    async def work(bus, pool):  # type: ignore[no-untyped-def]
        return await rebuild(bus, pool)
    counts = asyncio.run(_with_services(Path(args.data_dir), work))
    print("read models rebuilt from the streams: " + ", ".join(f"{s} {n} events" for s, n in counts.items()))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tocsin import demo
    data_dir = Path(args.data_dir)

    async def work(bus, pool):  # type: ignore[no-untyped-def]
        return await demo.load(pool, bus, _sealer(data_dir))
    loaded = asyncio.run(_with_services(data_dir, work))
    found = runtime.read(data_dir)
    print(demo.report(loaded, found.http if found else os.environ.get("TOCSIN_HTTP", "127.0.0.1:8080")))
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from tocsin.api import auth, config_store, users
    from tocsin.events import audit

    async def work(bus, pool):  # type: ignore[no-untyped-def]
        async with pool.acquire() as conn:
            _, config = await config_store.current(conn, _sealer(Path(args.data_dir)))
            if await users.find(conn, config, args.user) is None:
                return None
            scopes = tuple(args.scope or auth.DEFAULT_SCOPES)
            token_id, token = await auth.create_token_row(conn, args.user, name=args.name or "", scopes=scopes)
        await bus.publish(audit.subject("token.created"), audit.recorded(
            f"cli:{os.environ.get('USER', '')}", "token.created", target=token_id, via="cli",
            details={"user": args.user, "name": args.name or "", "scopes": sorted(set(scopes))}))
        return token
    try:
        token = asyncio.run(_with_services(Path(args.data_dir), work))
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return USAGE_ERROR
    if token is None:
        print(f"unknown user {args.user!r}: add them to the config first", file=sys.stderr)
        return 1
    print(token)
    return 0


def _read_new_password(args: argparse.Namespace) -> str | None:
    """From stdin (--password-stdin: the first line), else asked twice on the terminal; None if they differ."""
    import getpass
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        print("no terminal to ask for a password on: pass --password-stdin and send it on stdin",
              file=sys.stderr)
        return None
    first = getpass.getpass(f"password for {args.username}: ")
    if first != getpass.getpass("again: "):
        print("the two passwords differ", file=sys.stderr)
        return None
    return first


def cmd_user_create_admin(args: argparse.Namespace) -> int:
    from tocsin.api import users
    from tocsin.events import audit
    password = _read_new_password(args)
    if password is None:
        return USAGE_ERROR
    try:
        users.check_password(password, args.username)
    except users.WeakPassword as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return USAGE_ERROR
    by = f"cli:{os.environ.get('USER', '')}"

    async def work(bus, pool):  # type: ignore[no-untyped-def]
        async with pool.acquire() as conn:
            await users.create_admin(conn, args.username, email=args.email, password=password, by=by)
        await bus.publish(audit.subject("user.created"), audit.recorded(
            by, "user.created", target=args.username, via="cli", details={"role": "admin", "email": args.email}))
    try:
        asyncio.run(_with_services(Path(args.data_dir), work))
    except ValueError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return USAGE_ERROR
    print(f"{args.username} is an administrator; sign in at /api/v1/auth/login")
    return 0


def cmd_channel_test(args: argparse.Namespace) -> int:
    from tocsin.notifier.channeltest import UnknownChannel, send_test
    try:
        outcome = _with_bus(Path(args.data_dir), lambda bus: send_test(bus, args.name))
    except UnknownChannel as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(outcome.describe())
    return 0 if outcome.result.outcome == "ok" else 1


def _with_bus(data_dir: Path, work):  # type: ignore[no-untyped-def]
    """Run `work(bus)` against the NATS of TOCSIN_NATS_URL, else of the running `tocsin up` in the data dir."""
    from tocsin.events.bus import Bus
    nats_url = os.environ.get("TOCSIN_NATS_URL") or runtime.urls(data_dir)[0]
    _key_from(data_dir)

    async def run():  # type: ignore[no-untyped-def]
        bus = await Bus.connect(nats_url, "tocsin-cli")
        try:
            await bus.ensure_streams()
            return await work(bus)
        finally:
            await bus.close()
    return asyncio.run(run())


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from tocsin.notifier import deadletters

    async def work(bus):  # type: ignore[no-untyped-def]
        items = await deadletters.stored(bus, getattr(args, "kind", ""))
        if args.action == "list":
            for item in items:
                print(item.line())
            if not items:
                print("no dead letters", file=sys.stderr)
            return 0
        chosen = items if args.all else [i for i in items if i.seq in set(args.seq)]
        missing = set(args.seq) - {i.seq for i in chosen}
        for seq in sorted(missing):
            print(f"no dead letter {seq}", file=sys.stderr)
        failed = bool(missing) or not chosen
        for item in chosen:
            try:
                print(f"replayed {item.seq} as notification {await deadletters.replay(bus, item)}")
            except ValueError as exc:
                print(str(exc), file=sys.stderr)
                failed = True
        return 1 if failed else 0
    if args.action == "replay" and not (args.all or args.seq):
        print("name the dead letters to replay (their numbers from `tocsin dead-letters list`), or --all",
              file=sys.stderr)
        return USAGE_ERROR
    return int(_with_bus(Path(args.data_dir), work))


def cmd_heartbeat(args: argparse.Namespace) -> int:
    from tocsin.heartbeat import main as heartbeat_main
    return heartbeat_main(args.host, args.interval, args.server,
                          args.key or os.environ.get("TOCSIN_HEARTBEAT_KEY", ""), args.metrics_command)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tocsin", description="Self-hosted on-call routing and alert delivery.")
    p.add_argument("--data-dir", default=os.environ.get("TOCSIN_DATA_DIR", ".tocsin"),
                   help="where `tocsin up` keeps its data, and where other commands find it (default .tocsin)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("up", help="run every service with an embedded NATS and Postgres")
    s.add_argument("--config", default="", help="a tocsin.yaml to apply at start")
    s.add_argument("--data-dir", default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_up)

    for name in ("intake", "router", "scheduler", "notifier", "api"):
        s = sub.add_parser(name, help=f"run the {name} service alone")
        s.add_argument("--data-dir", default=argparse.SUPPRESS)
        if name == "notifier":
            s.add_argument("--kinds", default="", help="comma-separated channel kinds (default: all)")
        s.set_defaults(func=cmd_service, service=name)

    s = sub.add_parser("migrate", help="create or upgrade the Postgres schema")
    s.add_argument("--check", action="store_true", help="only verify; exit 1 when behind")
    s.add_argument("--data-dir", default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_migrate)

    config = sub.add_parser("config", help="config as code").add_subparsers(dest="action", required=True)
    s = config.add_parser("check", help="validate a file; change nothing")
    s.add_argument("file")
    s.set_defaults(func=cmd_config_check)
    s = config.add_parser("apply", help="validate and apply a file, all or nothing")
    s.add_argument("file")
    s.add_argument("--data-dir", default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_config_apply)
    s = config.add_parser("export", help="print the applied config, secrets masked")
    s.add_argument("--data-dir", default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_config_export)

    s = sub.add_parser("heartbeat", help="send this host's UDP heartbeats (boot, alive, shutdown)")
    s.add_argument("--host", required=True, help="the host's name, as under hosts: in the config")
    s.add_argument("--interval", default="30", help="seconds (or 30s, 1m) between alive datagrams (default 30)")
    s.add_argument("--server", default=os.environ.get("TOCSIN_HEARTBEAT_SERVER", "127.0.0.1:9999"),
                   help="HOST:PORT of the UDP listener (default $TOCSIN_HEARTBEAT_SERVER or 127.0.0.1:9999)")
    s.add_argument("--key", default="",
                   help="the host's key; better in $TOCSIN_HEARTBEAT_KEY, which other users cannot see")
    s.add_argument("--metrics-command", default="",
                   help="a shell command printing `name value` lines, run before each alive datagram")
    s.set_defaults(func=cmd_heartbeat)

    projections = sub.add_parser("projections", help="the read models the API answers from").add_subparsers(
        dest="action", required=True)
    s = projections.add_parser("rebuild", help="drop the read models and replay them from the streams")
    s.add_argument("--data-dir", default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_projections_rebuild)

    s = sub.add_parser("demo", help="load demo users, teams, rotations, routes and channels")
    s.add_argument("--data-dir", default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_demo)

    channel = sub.add_parser("channel", help="notification channels").add_subparsers(dest="action", required=True)
    s = channel.add_parser("test", help="send a test message through one channel and print the provider's answer")
    s.add_argument("name", help="a shared channel (ops-slack) or a person's contact (alice/push)")
    s.add_argument("--data-dir", default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_channel_test)

    dead = sub.add_parser("dead-letters", help="what no retry could deliver").add_subparsers(dest="action",
                                                                                           required=True)
    s = dead.add_parser("list", help="one line per dead letter: number, time, kind, reason, notification, error")
    s.add_argument("--kind", default="", help="only this channel kind")
    s.add_argument("--data-dir", default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_dead_letters)
    s = dead.add_parser("replay", help="send dead letters' commands again (under new notification ids)")
    s.add_argument("seq", nargs="*", type=int, help="numbers from `tocsin dead-letters list`")
    s.add_argument("--all", action="store_true", help="every dead letter (of --kind)")
    s.add_argument("--kind", default="", help="only this channel kind")
    s.add_argument("--data-dir", default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_dead_letters)

    token = sub.add_parser("token", help="personal API tokens").add_subparsers(dest="action", required=True)
    s = token.add_parser("create", help="print a new API token for USER once")
    s.add_argument("user")
    s.add_argument("--scope", action="append", help="repeatable; default incidents:read incidents:write")
    s.add_argument("--name", default="")
    s.add_argument("--data-dir", default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_token_create)

    user = sub.add_parser("user", help="people who sign in").add_subparsers(dest="action", required=True)
    s = user.add_parser("create-admin", help="make USERNAME an administrator with a password (asked twice)")
    s.add_argument("username")
    s.add_argument("--email", required=True)
    s.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    s.add_argument("--data-dir", default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_user_create_admin)
    return p


def use_uvloop() -> None:
    """uvloop runs every service's event loop: about a fifth less latency per page on the same CPU
    (docs/benchmarks.md). TOCSIN_EVENT_LOOP=asyncio keeps the standard one."""
    if os.environ.get("TOCSIN_EVENT_LOOP", "uvloop") == "uvloop":
        try:
            import uvloop
        except ImportError:
            return
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: list[str] | None = None) -> None:
    use_uvloop()
    args = parser().parse_args(argv)
    try:
        rc = args.func(args)
    except (runtime.NotFound, keys.MissingSecretKey) as exc:
        print(str(exc), file=sys.stderr)
        rc = 1
    except KeyboardInterrupt:
        rc = 130
    sys.exit(rc)
