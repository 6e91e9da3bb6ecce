"""Names that become file names in a report (tasks/<task>.html, runs/<id>.html, the board's folder).

Task and leaderboard names are validated when they are loaded; the report checks them again
before joining one to a path (defence in depth): a name that could leave the report folder,
hide itself or not be a file name at all is refused, never sanitised into something else.
"""
from __future__ import annotations

from harness.errors import InputError

MAX_NAME = 120


def name_problem(name) -> str | None:
    """Why `name` cannot be one file name inside the report folder, or None when it can."""
    if not isinstance(name, str) or not name:
        return "is empty"
    if name.startswith("."):
        return "starts with a dot"
    if any(c in name for c in "/\\") or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "holds a slash, a backslash or a control character"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME:
        return f"is longer than {MAX_NAME} bytes"
    return None


def is_safe_name(name) -> bool:
    return name_problem(name) is None


def checked_name(name, what: str, field: str | None = None) -> str:
    """`name` unchanged, or an InputError saying why it cannot name a file of the report."""
    problem = name_problem(name)
    if problem:
        raise InputError(f"{what} {name!r} cannot name a report file: it {problem} "
                         f"(use letters, digits, '-', '_' or '.')", field=field)
    return name
