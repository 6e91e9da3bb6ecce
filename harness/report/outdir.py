"""The report's output folder (`--out`): pricebench's own, under the one rule of harness.owned.

- It carries a marker file (`.pricebench-report`) listing the files the report wrote; a non-empty
  folder without it, a file or a symbolic link is refused, never emptied. A report from before
  the marker (only a report's own files) is recognised by its contents.
- A report is built in a temporary sibling, given ordinary permissions (0755 folders, 0644
  files), then its files replace the previous report's; files of the previous report that the
  new one does not write go, a file the user put in the folder stays. A failed build removes
  its temporary folder and leaves the previous report untouched.
- Two builds into one folder both finish: the moves are serialised by a lock on the parent
  folder; a build killed outright leaves an unlocked temporary folder that the next one removes.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from harness.errors import InputError
from harness import owned

MARKER = ".pricebench-report"
# What a report written before the marker existed holds (it may be replaced, nothing else).
LEGACY = {"index.html", "compare.html", "leaderboard.csv", "assets", "runs", "tasks"}
PAGES = LEGACY | {"selection.html", "groups.html", "timings.csv"}


def _legacy_files(folder: Path, marker: dict | None) -> set[str] | None:
    """The files an older report wrote: with its marker (which listed none), the report's own names;
    without one, only when the whole folder is such a report."""
    if marker is None and not _is_legacy_report(folder):
        return None
    found = set()
    for name in PAGES:
        path = folder / name
        if name in ("assets", "runs", "tasks"):
            if path.is_dir() and not path.is_symlink():
                found |= {f"{name}/{c.name}" for c in os.scandir(path) if c.is_file(follow_symlinks=False)
                          and (c.name.endswith(".html") or name == "assets" and c.name in ("report.js", "style.css"))}
        elif path.is_file() and not path.is_symlink():
            found.add(name)
    return found


REPORT = owned.Owner(MARKER, "pricebench", "--out", legacy=_legacy_files)


@contextmanager
def replacing_folder(out_dir, marker: dict):
    """Yield an empty staging folder to fill; on success its files replace the report at `out_dir`
    (the user's own files there stay); on any failure it is removed and nothing changed."""
    check_out_dir(out_dir)
    meta = {k: v for k, v in marker.items() if k != "written_by"}
    with owned.writing(out_dir, REPORT, meta, state_of=lambda path: _out_state(path)) as staging:
        yield staging


def check_out_dir(out_dir) -> None:
    """Refuse now an --out a report could not replace (a suite checks before running for hours)."""
    out = Path(os.path.abspath(out_dir))
    if out.parent == out:
        raise InputError("is a file system root: choose a folder for the report", path=out, field="--out")
    _out_state(out)


def _is_legacy_report(folder: Path) -> bool:
    """A report from before the marker: only the files pricebench writes, and its own script."""
    try:
        names = set(os.listdir(folder))
        if not names or not names <= LEGACY or "assets" not in names:
            return False
        with open(folder / "assets" / "report.js", encoding="utf-8") as f:
            if not f.readline().startswith("// pricebench report:"):
                return False
        for sub, allowed in (("assets", {"report.js", "style.css"}), ("runs", None), ("tasks", None)):
            path = folder / sub
            if sub not in names:
                continue
            if path.is_symlink() or not path.is_dir():
                return False
            for child in os.scandir(path):
                if not child.is_file(follow_symlinks=False) or (allowed is not None and child.name not in allowed) \
                        or (allowed is None and not child.name.endswith(".html")):
                    return False
        return all(os.path.isfile(folder / n) and not os.path.islink(folder / n) for n in names - {"assets", "runs",
                                                                                                       "tasks"})
    except (OSError, UnicodeDecodeError):
        return False


def _out_state(out: Path) -> tuple[str, dict]:
    """('absent' | 'empty' | 'ours', the files the report wrote); anything else is refused naming the path."""
    return owned.folder_state(out, REPORT)
