"""Which category each evaluated item is in, for the grouped metrics (report/groups.py).

Predictions carry their item's category (runner.make_record), so a store alone gives the
categories of a recorded, measured or imported run. Runs stored before records carried it
get it from the task a leaderboard report has already loaded, by item id; a report over a
store (no task loaded) shows such items under NO_CATEGORY rather than reading data.
"""
from __future__ import annotations

import pandas as pd

NO_CATEGORY = "(no category)"
MAX_CHARS = 80          # a hand-edited record's category is shown, never a page's worth of it


def with_categories(entry, task):
    """The entry, its items' missing categories filled from `task` (a harness.tasks.Task, or None)."""
    if task is None or not entry.has_items or entry.items["category"].notna().all():
        return entry
    try:
        known = {item.id: item.category for item in task.eval_items()}
    except Exception:  # noqa: BLE001 - a task whose data cannot be read leaves the categories unknown
        return entry
    missing = entry.items["category"].isna()
    entry.items.loc[missing, "category"] = entry.items.loc[missing, "id"].map(known)
    return entry


def category_labels(values: pd.Series) -> pd.Series:
    """Stored categories as the labels a table groups by: text (shortened), or NO_CATEGORY."""
    def label(value) -> str:
        return value[:MAX_CHARS] if isinstance(value, str) and value.strip() else NO_CATEGORY

    return pd.Series([label(v) for v in values.tolist()], index=values.index, dtype=object)
