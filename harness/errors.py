"""One error type for bad input, so every message names the file, line and field."""
from __future__ import annotations


class InputError(ValueError):
    """Bad user input: a data file, a task or leaderboard spec, or a CLI option."""

    def __init__(self, message: str, *, path=None, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field, self.reason = path, line, field, message
        where = ""
        if path is not None:
            where = str(path)
            if line is not None:
                where += f":{line}"
            where += ": "
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}{what}{message}")
