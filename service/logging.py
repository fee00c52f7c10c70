"""Structured JSON logs (structlog) for our code and the libraries' stdlib loggers alike.

``fmt`` is ``json``, ``console`` (readable, for people) or ``auto`` (the default): console when
the log goes to a terminal, JSON otherwise (a file, a pipe, a container's log collector).

Tracebacks are rendered without local variables (structlog's default dict tracebacks include
them, and locals can hold secrets). Importing eventsourcing.postgres sets psycopg's loggers to
ERROR for the whole process; configuring logging restores them.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def resolve_format(fmt: str, stream: TextIO) -> str:
    """``auto`` -> ``console`` on a terminal, ``json`` anywhere else."""
    if fmt != "auto":
        return fmt
    return "console" if stream.isatty() else "json"


def configure_logging(level: str = "info", fmt: str = "auto",
                      stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if resolve_format(fmt, out) == "json"
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("psycopg", "psycopg.pool"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # httpx logs every webhook delivery at INFO; the deliveries table is the record of those.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # uvicorn's own access log would duplicate ours (and would carry client addresses).
    logging.getLogger("uvicorn.access").disabled = True
