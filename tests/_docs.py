"""Test helper: read a table of the docs, to check it against the code's own table."""
from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def markdown_table(path: Path, after: str) -> list[list[str]]:
    """The body rows (cells stripped) of the first markdown table after the text `after`."""
    text = path.read_text(encoding="utf-8").split(after, 1)[1]
    rows = re.search(r"((?:^\|.*\|\n)+)", text, re.M).group(1).splitlines()
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]
