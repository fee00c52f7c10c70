"""Every setting in service/settings.py is documented in docs/operations.md, and the doc names
no setting that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

from service.settings import PREFIX, Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
NAME = re.compile(r"`(KAOPING_[A-Z0-9_]+)`")


def _settings_table() -> dict[str, str]:
    """Each variable named in the first column of the "Settings" table -> its default cell."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    out: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3:
            continue
        for name in NAME.findall(cells[0]):
            out[name] = cells[1]
    return out


def test_every_setting_is_in_the_operations_table() -> None:
    documented = _settings_table()
    fields = {PREFIX + f.upper() for f in Settings.__struct_fields__}
    assert sorted(fields - set(documented)) == []
    assert sorted(set(documented) - fields) == []


def test_the_documented_defaults_are_the_real_ones() -> None:
    documented = _settings_table()
    defaults = Settings()
    for field in Settings.__struct_fields__:
        value = getattr(defaults, field)
        cell = documented[PREFIX + field.upper()]
        if value is None or field == "migrate_database_url":
            continue  # "unset" / "= database URL"
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        if isinstance(value, float) and value.is_integer():
            shown = str(int(value))
        assert shown in cell.replace("`", ""), (field, value, cell)


def test_the_docs_name_no_setting_that_does_not_exist() -> None:
    fields = {PREFIX + f.upper() for f in Settings.__struct_fields__}
    root = DOC.parent.parent
    for path in [root / "README.md", *sorted(DOC.parent.glob("*.md"))]:
        names = set(NAME.findall(path.read_text(encoding="utf-8")))
        unknown = {n for n in names - fields if not n.startswith("KAOPING_TEST_")}
        assert not unknown, (path.name, sorted(unknown))
