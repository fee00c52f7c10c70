"""The docs name only files a clone has: docs/*.md and README.md point at no file outside the
repository (no ``../…``, no ``/work/…``, no home directory), and every repository path they
name in backticks exists (placeholders such as ``<resource>``, ``{year}``, ``NNNN`` and ``…``
match any name)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])
# The repository's top-level entries a path in the docs can start with (a clone has these).
TOP = ("api", "bench", "docs", "domain", "migrations", "projections", "scripts", "service",
       "tests", ".ci", "Makefile", "README.md", "pyproject.toml", "Dockerfile",
       "docker-compose.yml")
# Outside paths, and the team's design notes (kept beside the repository, not in a clone).
OUTSIDE = re.compile(
    r"(?<![\w.])\.\./|/work/|/home/|/root/|~/|/Users/|\bshared/|`reference/|DESIGN\.md")
BACKTICKED = re.compile(r"`([^`\n]+)`")
# A path in running text (domain/scheme.py, docs/operations.md), with or without backticks.
BARE = re.compile(r"(?<![\w/.\-])((?:api|bench|docs|domain|migrations|projections|scripts|service"
                  r"|tests|\.ci)/[\w/.\-<>{}*]*[\w>}*])")
PLACEHOLDER = re.compile(r"<[^>]*>|\{[^}]*\}|…|\.\.\.|NNNN|\bN\b|\*")


def _repo_path(token: str) -> str | None:
    """The repository path a backticked token names, or None when it names none."""
    token = re.sub(r"(::\S*|:\d+(-\d+)?|#\S*)$", "", token.strip()).rstrip(".,;:")
    if " " in token or token.startswith(("/", "http")):
        return None
    first = token.split("/", 1)[0]
    if first not in TOP or (first == token and "." not in token and token != "Makefile"):
        return None  # `api` alone is a word, `api/app.py` a path
    if first == "api" and token.startswith("api/v1"):
        return None  # a URL path, not a file
    return token


# Written by the tests and ignored by git (tests/artifacts/…): named, never in a clone.
IGNORED = tuple(line.strip() for line in (REPO / ".gitignore").read_text().splitlines()
                if line.strip().endswith("/") and "/" in line.strip()[:-1])


def _exists(path: str) -> bool:
    if path.startswith(IGNORED):
        return True
    if not PLACEHOLDER.search(path):
        return (REPO / path).exists()
    pattern = PLACEHOLDER.sub("*", path).rstrip("/")
    return any(REPO.glob(pattern))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_doc_names_a_file_outside_the_repository(doc: Path) -> None:
    bad = [f"{doc.name}:{n}: {line.strip()}"
           for n, line in enumerate(doc.read_text().splitlines(), 1) if OUTSIDE.search(line)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_repository_path_a_doc_names_exists(doc: Path) -> None:
    missing = []
    for n, line in enumerate(doc.read_text().splitlines(), 1):
        for token in BACKTICKED.findall(line):
            path = _repo_path(token)
            if path is not None and not _exists(path):
                missing.append(f"{doc.name}:{n}: `{token}`")
        missing += [f"{doc.name}:{n}: {path}" for path in BARE.findall(line)
                    if not path.startswith("api/v1") and not _exists(path)]
    assert not missing, "\n".join(missing)


def test_the_checks_catch_what_they_should() -> None:
    assert OUTSIDE.search("see `../shared/DESIGN.md`")
    assert OUTSIDE.search("in /work/shared/reference")
    assert OUTSIDE.search("the design notes' `reference/domain-notes.md`")
    assert not OUTSIDE.search("`tests/e2e/test_walkthrough.py` and 1..3")
    assert _repo_path("service/explain.py") == "service/explain.py"
    assert _repo_path("tests/e2e/test_walkthrough.py::test_x") == "tests/e2e/test_walkthrough.py"
    assert _repo_path("api/v1/units") is None
    assert _repo_path("kaoping explain team:T02") is None
    assert _exists("migrations/<engine>/NNNN_*.sql")
    assert _exists("api/routes/<resource>.py")
    assert not _exists("service/no_such_module.py")
    assert BARE.findall("(`Scheme.publication`, domain/scheme.py; the /api/v1/units") == [
        "domain/scheme.py"]
