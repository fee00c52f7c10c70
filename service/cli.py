"""``kaoping``: the command line for operators (serve, migrate, project, keys, tokens,
webhooks)."""

from __future__ import annotations

import argparse
import csv
import getpass
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import psycopg.errors

from domain.errors import DomainError
from service.ledger.signer import RotationPending, SignerRefused
from service.logging import configure_logging
from service.principals import (
    PrincipalError,
    Role,
    create_api_key,
    list_api_keys,
    parse_identity,
    revoke_api_key,
    rotate_api_key,
)
from service.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from service.runtime import Services
    from service.tokens import TokenKeys


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

    options: dict[str, Any] = {
        "host": args.host or settings.host, "port": args.port or settings.port,
        "log_config": None, "access_log": False, "server_header": False,
        # The app reads X-Forwarded-For itself, and only from KAOPING_TRUSTED_PROXIES:
        # uvicorn's own handling would believe any local peer's header.
        "proxy_headers": False}
    if args.workers > 1:
        # Several API processes on one socket: each builds its app from the environment
        # (api:create_app); none follows the log or signs (that is `kaoping project`'s work).
        if settings.engine != "postgres":
            print("kaoping serve --workers needs PostgreSQL: SQLite is one process's store",
                  file=sys.stderr)
            return 2
        if settings.projections != "external":
            print("kaoping serve --workers needs KAOPING_PROJECTIONS=external and one "
                  "`kaoping project` worker (the follower and the checkpoint signer)",
                  file=sys.stderr)
            return 2
        uvicorn.run("api:create_app", factory=True, workers=args.workers, **options)
        return 0
    uvicorn.run(create_app(settings), **options)
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
        # The follower, the checkpoint signer, the webhook deliverer; the demo city only when
        # KAOPING_DEMO=true says so (a worker never loads it by default).
        services.start(demo=settings.demo is True)
        while not stop.wait(1.0):
            pass
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


def cmd_keys_list(settings: Settings, _args: argparse.Namespace) -> int:
    services = _services(settings)
    try:
        for info in list_api_keys(services.db):
            print(msgspec.json.encode(info).decode())
    finally:
        services.close()
    return 0


def cmd_keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    services = _services(settings)
    try:
        key_id, key = rotate_api_key(services.db, args.key_id, services.clock.now())
    finally:
        services.close()
    print(f"# API key {key_id} replaces {args.key_id} (same principal); shown once, store it "
          f"now, then: kaoping keys revoke {args.key_id}", file=sys.stderr)
    print(key)
    return 0


def cmd_keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    services = _services(settings)
    try:
        revoke_api_key(services.db, args.key_id, services.clock.now())
    finally:
        services.close()
    print(f"API key {args.key_id} revoked", file=sys.stderr)
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


def _token_keys(settings: Settings) -> TokenKeys:
    from service.tokens import TokenKeys  # noqa: PLC0415

    return TokenKeys(settings.token_key_path, jwks_path=settings.token_jwks_path)


def cmd_token_keys_list(settings: Settings, _: argparse.Namespace) -> int:
    for info in _token_keys(settings).describe():
        print(msgspec.json.encode(info).decode())
    return 0


def cmd_token_key_rotate(settings: Settings, args: argparse.Namespace) -> int:
    from service.clock import SystemClock  # noqa: PLC0415

    old, new = _token_keys(settings).rotate(SystemClock().now(), revoke_old=args.revoke_old)
    state = "revoked: its tokens are refused now" if args.revoke_old else (
        f"retired: its tokens stay valid until they expire (at most "
        f"{settings.token_ttl_seconds} s); revoke it early with: "
        f"kaoping keys revoke-token-key -- {old}")
    print(f"token signing key {new} is current; {old} is {state}", file=sys.stderr)
    print(new)
    return 0


def cmd_token_key_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from service.clock import SystemClock  # noqa: PLC0415

    _token_keys(settings).revoke(args.kid, SystemClock().now())
    print(f"token signing key {args.kid} revoked: every token it signed is refused now",
          file=sys.stderr)
    return 0


def cmd_ledger_public(settings: Settings, _: argparse.Namespace) -> int:
    from service.ledger.signer import LedgerSigner  # noqa: PLC0415

    if not Path(settings.signing_key_path).exists():  # never mint a key just to print it
        print(f"kaoping: no ledger signing key at {Path(settings.signing_key_path).resolve()}; "
              "the published key is also at GET /api/v1/ledger/key", file=sys.stderr)
        return 2
    print(LedgerSigner(settings.signing_key_path, settings.ledger_origin).vkey)
    return 0


def cmd_ledger_keys(settings: Settings, _: argparse.Namespace) -> int:
    services = _services(settings)
    try:
        for info in services.signer.keys(services.db):
            print(msgspec.json.encode(info).decode())
    finally:
        services.close()
    return 0


def cmd_ledger_key_rotate(settings: Settings, args: argparse.Namespace) -> int:
    from service.ledger.rotation import rotate_ledger_key  # noqa: PLC0415

    services = _services(settings)
    try:
        handover = rotate_ledger_key(
            services.signer, services.store, services.db, services.clock.now(),
            reason=args.reason, authority=args.authority,
            actor=f"operator:{getpass.getuser()}")
    finally:
        services.close()
    print(f"the ledger key {handover.retired.split('+')[1]} is retired; "
          f"{handover.successor.split('+')[1]} signs from now on. Publish the new verifier key "
          "(stdout) beside the old one. The handover checkpoint, signed by both:",
          file=sys.stderr)
    sys.stderr.write(handover.checkpoint.note.decode())
    print(handover.successor)
    return 0


def cmd_ledger_checkpoint(settings: Settings, _: argparse.Namespace) -> int:
    services = _services(settings)
    try:
        cp = services.signer.sign(services.db, services.clock.now())
    finally:
        services.close()
    sys.stdout.write(cp.note.decode())
    return 0


def cmd_verify_log(settings: Settings, args: argparse.Namespace) -> int:
    from rich.progress import Progress  # noqa: PLC0415

    from service.db import open_database  # noqa: PLC0415
    from service.ledger.keyring import read_keyring  # noqa: PLC0415
    from service.ledger.signer import LedgerSigner  # noqa: PLC0415
    from service.ledger.verify_log import (  # noqa: PLC0415
        DEFAULT_WORKERS,
        logged_handovers,
        verify_log,
    )

    signer = LedgerSigner(settings.signing_key_path, settings.ledger_origin)
    vkeys = args.key or signer.trusted_vkeys()
    failures: list[str] = []
    try:
        # The signer's memory, outside the database: a store shorter than it was rolled back.
        signed = signer.last_signed()
    except SignerRefused as exc:
        signed, failures = None, [str(exc)]
    db = open_database(settings)
    try:
        # A retired key signs no tree past its handover: the keyring's and the log's record.
        retired = logged_handovers(db, settings.ledger_origin)
        for key in read_keyring(Path(f"{settings.signing_key_path}.keyring.json")):
            retired[key.vkey] = min(key.handover_size, retired.get(key.vkey, key.handover_size))
        with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task("verifying the ledger", total=None)
            report = verify_log(db, vkeys, retired=retired, origin=settings.ledger_origin,
                                progress=lambda n: bar.update(task, completed=n),
                                signed=signed, workers=args.workers or DEFAULT_WORKERS)
    finally:
        db.close()
    report.failures[:0] = failures
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    if not report.ok:
        for failure in report.failures:
            print(f"FAIL {failure}", file=sys.stderr)
        print(f"verify-log: {len(report.failures)} problem(s); first: {report.failures[0]}",
              file=sys.stderr)
        return 1
    memory = (f"; the signer's last checkpoint (size {report.signed_size}) reached with its "
              "root" if report.signed_size is not None else
              "; no signer state file beside the key to compare with" if signed is None else "")
    workers = (f" by {report.processes} worker processes" if report.processes else "")
    print(f"ok: {report.events} events, {report.checkpoints} checkpoints verified{workers}; "
          f"{report.nodes_checked} tree nodes match their leaves; root {report.root.hex()}"
          f"{memory}")
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from service.demo import DemoCity  # noqa: PLC0415

    services = _services(settings)
    try:
        city = DemoCity(services, units=args.units, cadres=args.cadres, seed=args.seed)
        city.run()
        services.follower.catch_up()
        services.signer.sign(services.db, services.clock.now())
    finally:
        services.close()
    print(f"demo city loaded: {city.progress.done} steps; cycles 2024 and 2025 published")
    return 0


def cmd_webhooks_list(settings: Settings, _: argparse.Namespace) -> int:
    services = _services(settings)
    try:
        for owner, role, sub in services.webhooks.everyone():
            state = ("deleted" if not sub.active else "suspended" if sub.suspended_at
                     else "paused" if sub.paused else "active")
            print(msgspec.json.encode({"id": sub.id, "state": state, "owner": owner,
                                       "role": role, "url": sub.url,
                                       "event_types": sub.event_types,
                                       "after_position": sub.after_position,
                                       "created_at": sub.created_at,
                                       "suspended": sub.suspended_reason}).decode())
    finally:
        services.close()
    return 0


def cmd_webhooks_remove(settings: Settings, args: argparse.Namespace) -> int:
    services = _services(settings)
    try:
        services.webhooks.remove(args.subscription_id, args.reason,
                                 f"operator:{getpass.getuser()}")
    finally:
        services.close()
    print(f"webhook subscription {args.subscription_id} removed: nothing more is sent; its "
          "delivery log stays readable", file=sys.stderr)
    return 0


def _csv_rows(path: str | None) -> list[dict[str, str]]:
    if not path:
        return []
    with open(path, encoding="utf-8-sig", newline="") as fh:  # noqa: PTH123
        return [{k.strip(): (v or "").strip() for k, v in row.items()}
                for row in csv.DictReader(fh)]


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    """Units (code,name,kind,category) and cadres (code,name,unit_code,role,since) from CSV:
    all rows or none; every bad row is listed with its row number, field and rule."""
    from domain.errors import DomainError  # noqa: PLC0415
    from service.principals import Principal  # noqa: PLC0415

    operator = Principal(id=f"operator:{getpass.getuser()}", name="operator",
                         role=Role.ORGANIZER, via="cli")
    services = _services(settings)
    try:
        written = services.reference.import_rows(
            operator, units=_csv_rows(args.units), cadres=_csv_rows(args.cadres))
    except DomainError as exc:
        for field, rule, message in exc.errors or [(exc.field or "", exc.rule, exc.detail)]:
            print(f"{field}: {message} [{rule}]", file=sys.stderr)
        print(f"kaoping import: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        services.close()
    print(f"imported {len(written.leaves)} records (positions {written.leaves[0].position}"
          f"..{written.leaves[-1].position})")
    return 0


def cmd_evidence(settings: Settings, args: argparse.Namespace) -> int:
    from service.evidence import build_bundle, encode_bundle  # noqa: PLC0415

    services = _services(settings)
    try:
        data = encode_bundle(build_bundle(services, args.cycle, args.subject, args.since,
                                          ballots=args.ballots))
    finally:
        services.close()
    out = args.output or (f"evidence-{args.cycle}-{args.subject.replace(':', '-')}"
                          f"{'-with-ballots' if args.ballots else ''}.json")
    with open(out, "wb") as fh:  # noqa: PTH123
        fh.write(data)
    print(f"wrote {out} ({len(data):,} bytes); check it with: kaoping verify {out} --key "
          "\"$(kaoping keys ledger-public)\"")
    return 0


def cmd_verify(_: Settings, args: argparse.Namespace) -> int:
    from service.verify import main as verify_main  # noqa: PLC0415

    argv = [args.bundle, *[x for key in args.key for x in ("--key", key)]]
    if args.trusted:
        argv += ["--trusted", args.trusted]
    if args.consistency:
        argv += ["--consistency", args.consistency]
    return verify_main(argv)


def cmd_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    from service.rebuild import check  # noqa: PLC0415

    if not args.check:
        print("kaoping rebuild: only --check is supported (rebuild beside the live models "
              "and compare)", file=sys.stderr)
        return 2
    services = _services(settings)
    try:
        report = check(services)
    finally:
        services.close()
    for table in report.tables:
        state = "ok  " if not table.differences else "DIFF"
        print(f"{state} {table.table:<20} live {table.live_rows:>7}  rebuilt "
              f"{table.rebuilt_rows:>7}  {table.rebuilt_digest[:16]}")
        for key in table.differences:
            print(f"       differs: {key}")
    for name, why in report.stopped.items():
        print(f"STOP {name:<20} {why}")
    print(f"{'ok' if report.ok else 'FAILED'}: read models rebuilt from the log up to "
          f"{report.positions} (checkpoint {report.checkpoint_size})")
    return 0 if report.ok else 1


def cmd_explain(settings: Settings, args: argparse.Namespace) -> int:
    from service.explain import explain, render  # noqa: PLC0415

    services = _services(settings)
    try:
        with services.db.read() as cur:
            card = explain(cur, services.store.mapper, args.cycle, args.subject, args.as_of,
                           restricted_ok=True)
    finally:
        services.close()
    print(render(card))
    return 0


def _evaluation_commands(sub: Any) -> None:
    demo = sub.add_parser("demo", help="load the demo city and run two cycles to publication")
    demo.add_argument("--units", type=int, default=None,
                      help="units (15 are townships; default and most: every named unit, 96)")
    demo.add_argument("--cadres", type=int, default=1000, help="cadres across the units")
    demo.add_argument("--seed", type=int, default=2025,
                      help="random seed: the same seed gives the same city and results")
    demo.set_defaults(func=cmd_demo)
    imp = sub.add_parser("import", help="import units and cadres from CSV (all or nothing)")
    imp.add_argument("--units", metavar="CSV", help="columns: code,name,kind,category")
    imp.add_argument("--cadres", metavar="CSV", help="columns: code,name,unit_code,role,since")
    imp.set_defaults(func=cmd_import)
    evidence = sub.add_parser("evidence", help="write the evidence bundle of a published result")
    evidence.add_argument("subject", help="e.g. team:T02 or cadre:C00017")
    evidence.add_argument("--cycle", type=int, required=True, help="the cycle's year")
    evidence.add_argument("--since", type=int, help="include a consistency proof from this size")
    evidence.add_argument("-o", "--output",
                          help="file to write (default: evidence-YEAR-SUBJECT.json)")
    evidence.add_argument("--ballots", action="store_true",
                          help="add the ballots on the boards of the pool's ballot sessions "
                               "for an offline recount (sealed material: they link trackers "
                               "to answers)")
    evidence.set_defaults(func=cmd_evidence)
    rebuild = sub.add_parser("rebuild", help="rebuild the read models from the log")
    rebuild.add_argument("--check", action="store_true",
                         help="rebuild beside the live ones and compare (the service keeps "
                              "serving); exit 1 on any difference")
    rebuild.set_defaults(func=cmd_rebuild)
    why = sub.add_parser("explain", help="a score card down to its events")
    why.add_argument("subject", help="e.g. team:T02 or cadre:C00017")
    why.add_argument("--cycle", type=int, required=True, help="the cycle's year")
    why.add_argument("--as-of", dest="as_of", help="a log position or an ISO time with zone")
    why.set_defaults(func=cmd_explain)
    check = sub.add_parser("verify", help="verify an evidence bundle offline")
    check.add_argument("bundle", help="the evidence bundle (JSON) to check")
    check.add_argument("--key", action="append", required=True,
                       help="a ledger verifier key you trust (repeat for rotated keys)")
    check.add_argument("--trusted", metavar="CHECKPOINT",
                       help="a checkpoint you already hold (same size as the bundle's or "
                            "earlier): the bundle's must extend it")
    check.add_argument("--consistency", metavar="FILE",
                       help="a consistency proof from the trusted size, as GET "
                            "/api/v1/ledger/proofs/consistency?from=&to= returns it")
    check.set_defaults(func=cmd_verify)


def _webhook_commands(sub: Any) -> None:
    hooks = sub.add_parser("webhooks", help="webhook subscriptions (operators)").add_subparsers(
        dest="webhooks", required=True)
    hooks.add_parser("list", help="every subscription: owner, role, URL, state, why suspended"
                     ).set_defaults(func=cmd_webhooks_list)
    remove = hooks.add_parser("remove", help="deactivate a subscription, with the reason")
    remove.add_argument("subscription_id", help="the subscription's id (see `webhooks list`)")
    remove.add_argument("--reason", required=True,
                        help="why it is removed (recorded with the operator)")
    remove.set_defaults(func=cmd_webhooks_remove)


def _serve_command(sub: Any) -> None:
    serve = sub.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", help="address to listen on (default: KAOPING_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default: KAOPING_PORT)")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="API processes on one socket (PostgreSQL, with "
                            "KAOPING_PROJECTIONS=external and one `kaoping project`)")
    serve.set_defaults(func=cmd_serve)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kaoping", description="Kaoping 考评 operations")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending SQL migrations").set_defaults(func=cmd_migrate)
    _serve_command(sub)
    project = sub.add_parser("project", help="follow the log into the read models (worker)")
    project.add_argument("--once", action="store_true", help="catch up, then exit")
    project.set_defaults(func=cmd_project)
    _evaluation_commands(sub)
    roles = [r.value for r in Role]
    keys = sub.add_parser("keys", help="API keys and signing keys").add_subparsers(
        dest="keys", required=True)
    create = keys.add_parser("create", help="create an API key for a system (printed once)")
    create.add_argument("--role", required=True, choices=roles, help="the system's role")
    create.add_argument("--name", required=True, help="who holds the key, e.g. \"HR system\"")
    create.add_argument("--as", dest="acts_as", metavar="KIND:ID",
                        help="the domain identity it acts as, e.g. department:P07")
    create.set_defaults(func=cmd_keys_create)
    keys.add_parser("list", help="every API key (ids, principals, states; never the keys)"
                    ).set_defaults(func=cmd_keys_list)
    rotate = keys.add_parser("rotate", help="a new key for the same principal (printed once)")
    rotate.add_argument("key_id", help="the key's id (kaoping keys list)")
    rotate.set_defaults(func=cmd_keys_rotate)
    revoke = keys.add_parser("revoke", help="refuse an API key from now on")
    revoke.add_argument("key_id", help="the key's id (kaoping keys list)")
    revoke.set_defaults(func=cmd_keys_revoke)
    keys.add_parser("ledger-public", help="print the ledger's C2SP verifier key").set_defaults(
        func=cmd_ledger_public)
    keys.add_parser("ledger-keys", help="every ledger key: status, checkpoints signed"
                    ).set_defaults(func=cmd_ledger_keys)
    rotate_ledger = keys.add_parser(
        "rotate-ledger-key", help="a new ledger signing key; the handover checkpoint is "
                                  "signed by both keys and the rotation recorded in the log")
    rotate_ledger.add_argument("--reason", required=True, help="why the key is replaced")
    rotate_ledger.add_argument("--authority", required=True,
                               help="who decided it, e.g. the body and its decision's minutes")
    rotate_ledger.set_defaults(func=cmd_ledger_key_rotate)
    keys.add_parser("token-keys", help="the token signing keys (kid, status; never a key)"
                    ).set_defaults(func=cmd_token_keys_list)
    rotate_token = keys.add_parser("rotate-token-key",
                                   help="a new token signing key; the old one is retired")
    rotate_token.add_argument("--revoke-old", action="store_true",
                              help="refuse the old key's tokens at once (it may have leaked)")
    rotate_token.set_defaults(func=cmd_token_key_rotate)
    revoke_token = keys.add_parser("revoke-token-key",
                                   help="refuse every token signed by a retired key")
    # A kid is base64url and may begin with "-": write `--` before it (printed that way).
    revoke_token.add_argument("kid", help="the key id; write -- before it: ... -- KID")
    revoke_token.set_defaults(func=cmd_token_key_revoke)
    ledger = sub.add_parser("ledger", help="the tamper-evident ledger").add_subparsers(
        dest="ledger", required=True)
    ledger.add_parser("checkpoint", help="sign a checkpoint of the log now").set_defaults(
        func=cmd_ledger_checkpoint)
    verify = sub.add_parser("verify-log", help="recompute every leaf and checkpoint; exit 1 "
                                               "naming the first position that fails")
    verify.add_argument("--key", action="append", metavar="VKEY",
                        help="a trusted verifier key (default: this deployment's own)")
    verify.add_argument("--workers", type=_positive, default=None,
                        metavar="N", help="processes that check blocks of the log in parallel "
                        "on a large log (default: the CPUs, at most 8; 1: this process only)")
    verify.set_defaults(func=cmd_verify_log)
    _webhook_commands(sub)
    tokens = sub.add_parser("tokens", help="people's bearer tokens").add_subparsers(
        dest="tokens", required=True)
    issue = tokens.add_parser("issue", help="issue a short-lived bearer token for a person")
    issue.add_argument("--role", required=True, choices=roles, help="the person's role")
    issue.add_argument("--as", dest="acts_as", required=True, metavar="KIND:ID",
                       help="who the person is, e.g. staff:li-wei or leader:L01")
    issue.add_argument("--name", help="the person's name, for the access record")
    issue.set_defaults(func=cmd_tokens_issue)
    return parser


class MissingStore(RuntimeError):
    """The SQLite store the settings name does not exist (and must not be created here)."""


def _require_store(settings: Settings, command: str) -> None:
    """Opening a missing SQLite file would create an empty store (and a new signing key beside
    it): a different ledger than the one meant, usually from the wrong directory."""
    if (settings.engine == "sqlite" and command not in ("cmd_migrate", "cmd_verify")
            and not settings.sqlite_path.exists()):
        msg = (f"no store at {settings.sqlite_path.resolve()}: run kaoping from the project "
               "directory (or set KAOPING_DATABASE_URL); `kaoping migrate` creates a new one")
        raise MissingStore(msg)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``kaoping`` command. Output piped into a reader that stops early (``| head``) ends
    the command quietly, as other Unix tools do, instead of with a BrokenPipe traceback."""
    try:
        code = _main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # https://docs.python.org/3/library/signal.html#note-on-sigpipe: point stdout at
        # /dev/null so that the interpreter's last flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return code


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        print(f"kaoping: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    func: Callable[[Settings, argparse.Namespace], int] = args.func
    try:
        _require_store(settings, func.__name__)
        return func(settings, args)
    except (PrincipalError, MissingStore) as exc:
        print(f"kaoping: {exc}", file=sys.stderr)
        return 2
    except (SignerRefused, RotationPending) as exc:
        print(f"kaoping: {exc}", file=sys.stderr)
        return 1
    except DomainError as exc:
        print(f"kaoping: {exc.detail} [{exc.rule}]", file=sys.stderr)
        return 1
    except (sqlite3.OperationalError, psycopg.errors.UndefinedTable) as exc:
        if "no such table" in str(exc) or "does not exist" in str(exc):
            print(f"kaoping: the store at {settings.database_url} is not migrated; run "
                  "`kaoping migrate` first", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
