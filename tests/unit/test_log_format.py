"""KAOPING_LOG_FORMAT=auto: readable lines on a terminal, JSON lines anywhere else."""

from __future__ import annotations

import json
import logging
import os
import pty
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from service.logging import configure_logging
from service.settings import load_settings


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def _emit() -> None:
    logging.getLogger("kaoping.test").info("migrated %s", "0012")


def test_auto_is_the_default() -> None:
    assert load_settings({}).log_format == "auto"


def test_auto_writes_json_to_a_file(tmp_path: Path, restore_logging: None) -> None:
    path = tmp_path / "log"
    with path.open("w") as out:
        configure_logging("info", "auto", stream=out)
        _emit()
    line = json.loads(path.read_text().splitlines()[-1])
    assert line["event"] == "migrated 0012"
    assert line["logger"] == "kaoping.test"


def test_auto_writes_readable_lines_to_a_terminal(restore_logging: None) -> None:
    main, side = pty.openpty()
    try:
        with os.fdopen(os.dup(side), "w") as terminal:
            assert terminal.isatty()
            configure_logging("info", "auto", stream=terminal)
            _emit()
            terminal.flush()
        text = os.read(main, 65536).decode()
    finally:
        os.close(main)
        os.close(side)
    assert "migrated 0012" in text
    assert not text.lstrip().startswith("{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_an_explicit_format_wins_over_the_terminal(tmp_path: Path,
                                                   restore_logging: None) -> None:
    path = tmp_path / "log"
    with path.open("w") as out:
        configure_logging("info", "console", stream=out)
        _emit()
    text = path.read_text()
    assert "migrated 0012" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[-1])
