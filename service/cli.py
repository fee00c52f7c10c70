"""``kaoping``: the command line for operators (serve, migrate, project, keys, tokens)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from service.logging import configure_logging
from service.principals import PrincipalError, Role, create_api_key, parse_identity
from service.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from service.runtime import Services


def _services(settings: Settings) -> Services:
    from service.runtime import Services  # noqa: PLC0415 -- keep `kaoping --help` fast

    return Services(settings)


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    from service.migrate import migrate  # noqa: PLC0415

    applied = migrate(settings)
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else
                                                     "; the schema is current"))
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn  # noqa: PLC0415

    from api import create_app  # noqa: PLC0415

    app = create_app(settings)
    uvicorn.run(app, host=args.host or settings.host, port=args.port or settings.port,
                log_config=None, access_log=False, server_header=False)
    return 0


def cmd_project(settings: Settings, args: argparse.Namespace) -> int:
    services = _services(settings)
    try:
        if args.once:
            print(f"applied {services.follower.catch_up()} event(s)")
            return 0
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        services.follower.run(stop)
    finally:
        services.close()
    return 0


def cmd_keys_create(settings: Settings, args: argparse.Namespace) -> int:
    services = _services(settings)
    try:
        acts_as = parse_identity(args.acts_as) if args.acts_as else None
        key_id, key = create_api_key(services.db, role=Role(args.role), name=args.name,
                                     acts_as=acts_as, now=services.clock.now())
    finally:
        services.close()
    print(f"# API key {key_id} for {args.name!r} (role {args.role}); shown once, store it now",
          file=sys.stderr)
    print(key)
    return 0


def cmd_tokens_issue(settings: Settings, args: argparse.Namespace) -> int:
    services = _services(settings)
    try:
        identity = parse_identity(args.acts_as)
        token = services.tokens.issue(role=Role(args.role), acts_as=identity,
                                      name=args.name or str(identity), now=services.clock.now())
    finally:
        services.close()
    print(token)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kaoping", description="Kaoping 考评 operations")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending SQL migrations").set_defaults(func=cmd_migrate)
    serve = sub.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)
    project = sub.add_parser("project", help="follow the log into the read models (worker)")
    project.add_argument("--once", action="store_true", help="catch up, then exit")
    project.set_defaults(func=cmd_project)
    roles = [r.value for r in Role]
    keys = sub.add_parser("keys", help="API keys").add_subparsers(dest="keys", required=True)
    create = keys.add_parser("create", help="create an API key for a system (printed once)")
    create.add_argument("--role", required=True, choices=roles)
    create.add_argument("--name", required=True)
    create.add_argument("--as", dest="acts_as", metavar="KIND:ID")
    create.set_defaults(func=cmd_keys_create)
    tokens = sub.add_parser("tokens", help="people's bearer tokens").add_subparsers(
        dest="tokens", required=True)
    issue = tokens.add_parser("issue", help="issue a short-lived bearer token for a person")
    issue.add_argument("--role", required=True, choices=roles)
    issue.add_argument("--as", dest="acts_as", required=True, metavar="KIND:ID")
    issue.add_argument("--name")
    issue.set_defaults(func=cmd_tokens_issue)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        print(f"kaoping: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    func: Callable[[Settings, argparse.Namespace], int] = args.func
    try:
        return func(settings, args)
    except PrincipalError as exc:
        print(f"kaoping: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
