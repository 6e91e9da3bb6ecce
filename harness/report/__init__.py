"""The static HTML report: aggregation (pandas) + jinja2 templates -> reports/<leaderboard>/.

report_for_leaderboard: the rows a leaderboard spec asks for, as far as the store has them.
report_for_store: every run folder in a store, grouped by task (only finished runs are ranked).
Both take one store or a list of stores, read as one (stores.py: which copy of a run is shown).
"""
from __future__ import annotations

from pathlib import Path

from harness.report.build import BoardInfo, build_report
from harness.report.outdir import check_out_dir
from harness.report.collect import entries_from_leaderboard, entries_from_store
from harness.report.names import checked_name
from harness.report.stores import store_list

DEFAULT_REPORTS_DIR = Path("reports")


def report_for_leaderboard(board, *, out_dir=None, data_dir=None, store=None) -> Path:
    """Build reports/<board.name>/ from the store (nothing is run); returns its index.html."""
    checked_name(board.name, "leaderboard name", "name")
    entries, missing = entries_from_leaderboard(board, data_dir=data_dir, store=store)
    task_names = list(dict.fromkeys([e.task for e in entries] + [m.task for m in missing]))
    info = BoardInfo(board.name, board.title, board.description, task_names)
    return build_report(info, entries, out_dir or DEFAULT_REPORTS_DIR / board.name, missing)


def report_for_store(*, store=None, out_dir=None, name: str = "store") -> Path:
    """Build a report over every run folder in a store: finished runs ranked, the others marked."""
    checked_name(name, "report name", "--name")
    entries, missing = entries_from_store(store)
    tasks = list(dict.fromkeys([e.task for e in entries] + [m.task for m in missing if m.task is not None]))
    stores = len(store_list(store))
    info = BoardInfo(name, f"All runs in {f'{stores} stores' if stores > 1 else 'the store'} ({len(entries)})", "",
                     tasks)
    return build_report(info, entries, out_dir or DEFAULT_REPORTS_DIR / name, missing)


def report_dir(board, out_dir=None) -> Path:
    """Where a leaderboard's report goes: --out, or reports/<board name>."""
    return Path(out_dir) if out_dir else DEFAULT_REPORTS_DIR / checked_name(board.name, "leaderboard name", "name")


__all__ = ["BoardInfo", "build_report", "check_out_dir", "report_dir", "report_for_leaderboard", "report_for_store"]
