"""Issue 7: every refusal rule raised in domain/, service/ and api/ is exercised by a test.

A rule counts as tested when some test file (other than this one) names it as a quoted string,
as the refusal tests do when they assert a problem document's or an exception's ``rule``.
Rules not (yet) tested go in ALLOWLIST with the reason; the list may only shrink: an entry
whose rule is now tested, or no longer raised, fails the suite until it is removed.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RAISED = re.compile(r'rule\s*=\s*"([a-z0-9.\-]+)"')
SOURCES = ("domain", "service", "api")
EXCLUDED = {ROOT / "api" / "examples.py"}  # documentation examples, not refusals

# rule -> why no test provokes it yet (one line each)
ALLOWLIST: dict[str, str] = {}


def raised_rules() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for top in SOURCES:
        for path in sorted((ROOT / top).glob("**/*.py")):
            if path in EXCLUDED:
                continue
            for match in RAISED.finditer(path.read_text(encoding="utf-8")):
                found.setdefault(match.group(1), []).append(str(path.relative_to(ROOT)))
    return found


def _test_sources() -> str:
    me = Path(__file__).resolve()
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests").glob(
        "**/*.py")) if p.resolve() != me)


def mentioned(rule: str, text: str) -> bool:
    return f'"{rule}"' in text or f"'{rule}'" in text


def test_the_scan_finds_the_rules() -> None:
    """Guards the guard: a broken pattern or path would otherwise pass vacuously."""
    rules = raised_rules()
    assert len(rules) > 100
    assert {"scheme.weights-sum-to-one", "cycle.phase", "if-match.format"} <= set(rules)


def test_every_rule_raised_is_tested() -> None:
    text = _test_sources()
    untested = {rule: where for rule, where in raised_rules().items()
                if not mentioned(rule, text) and rule not in ALLOWLIST}
    assert not untested, "rules raised but provoked by no test (write a refusal test, or " \
        "allowlist with a reason):\n" + "\n".join(
            f"  {rule}  ({', '.join(sorted(set(where)))})"
            for rule, where in sorted(untested.items()))


def test_the_allowlist_only_shrinks() -> None:
    text, rules = _test_sources(), raised_rules()
    stale = sorted(rule for rule in ALLOWLIST if mentioned(rule, text) or rule not in rules)
    assert not stale, f"remove from ALLOWLIST (now tested, or no longer raised): {stale}"
    assert all(reason.strip() for reason in ALLOWLIST.values()), "every entry needs a reason"
