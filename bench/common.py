"""Shared pieces of the benchmarks: a throwaway PostgreSQL database, timing, reporting."""

from __future__ import annotations

import os
import secrets
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from service.migrate import migrate
from service.settings import Settings

ADMIN_DSN = os.environ.get("KAOPING_BENCH_POSTGRES_DSN",
                           os.environ.get("KAOPING_TEST_POSTGRES_DSN",
                                          "postgresql://postgres@127.0.0.1:5432/postgres"))


def _url(dbname: str, user: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    host, port = info.get("host", "127.0.0.1"), info.get("port", "5432")
    return f"postgresql://{user}@{host}:{port}/{dbname}"


@contextmanager
def scratch_postgres(workdir: Path) -> Iterator[Settings]:
    """A migrated database with its own roles, dropped afterwards."""
    tag = secrets.token_hex(3)
    name, owner, app = f"kp_bench_{tag}", f"kp_bench_owner_{tag}", f"kp_bench_app_{tag}"
    admin_user = str(psycopg.conninfo.conninfo_to_dict(ADMIN_DSN).get("user", "postgres"))
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    settings = Settings(database_url=_url(name, app), migrate_database_url=_url(name, admin_user),
                        db_owner_role=owner, db_app_role=app, projections="external",
                        signing_key_path=str(workdir / "ledger.key"),
                        token_key_path=str(workdir / "token.key"), db_pool_size=8,
                        log_level="warning")
    migrate(settings)
    try:
        yield settings
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
            for role in (app, owner):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 in milliseconds."""
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return q[49] * 1000, q[94] * 1000, q[98] * 1000


def table(title: str, rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
            for r in rows]
    return "\n".join([f"### {title}", "", line, rule, *body, ""])
