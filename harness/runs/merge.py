"""Two copies of one run (same run id) from two stores, or a store and a bundle: one run, or a conflict?

The same id means the same identity (task data and prompts, model spec, scoring), so two copies
normally hold the same replies; they may hold different items (one machine finished the run,
another stopped half-way). The rules, shared by `pricebench import` and by a report over several
stores (docs/leaderboards.md, "Several machines"):

- every item both copies hold must agree: the whole record but its latency (a timing of the
  machine, not part of the result), and both manifests must have the same identity and items;
- a complete copy wins over a partial one;
- two partial copies merge item by item; once the union covers every item of the run it is
  finished exactly as the runner finishes a run (`runner.finished`: metrics, status, timings);
- anything else is a conflict (`RunConflict`), named by run, item and field: no rule can choose
  between two different contents under one id.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from harness.errors import InputError
from harness.runs.record import MergeRecord
from harness.runs.store import Inspection

TIMING_FIELDS = frozenset({"latency_s"})       # per-record fields two agreeing copies may differ in
# fields a record written before they existed lacks: absent in one copy is no conflict, different values are
ADDED_FIELDS = frozenset({"category"})
DESCRIBING = ("label", "kind", "versions", "hardware", "info")   # what a partial manifest may lack
_ABSENT = object()


class RunConflict(InputError):
    """The same run id with two different contents."""


def record_difference(a: dict, b: dict) -> str | None:
    """The first field (by name) in which two records of one item differ, timings aside; None if they agree."""
    if a == b:
        return None
    for key in sorted((set(a) | set(b)) - TIMING_FIELDS):
        mine, theirs = a.get(key, _ABSENT), b.get(key, _ABSENT)
        if mine != theirs and not (key in ADDED_FIELDS and _ABSENT in (mine, theirs)):
            return key
    return None


def _check_same_run(ours: Inspection, theirs: Inspection, ours_at: str, theirs_at: str) -> None:
    rid, mine, other = ours.run_id, ours.manifest, theirs.manifest
    for key in ("identity", "item_ids"):
        if getattr(mine, key, None) != getattr(other, key, None):
            raise RunConflict(f"run {rid}: {ours_at} and {theirs_at} hold different runs under this id (manifest "
                              f"field '{key}' differs); neither is merged")
    for item in (mine.item_ids if mine else None) or []:
        a, b = ours.records.get(item), theirs.records.get(item)
        if a is not None and b is not None:
            field = record_difference(a, b)
            if field:
                raise RunConflict(f"run {rid}: item {item}: field '{field}' differs between {ours_at} and "
                                  f"{theirs_at} (the same run id with two different replies); neither is merged")


def merge(ours: Inspection, theirs: Inspection, ours_at: str, theirs_at: str) -> tuple[Inspection, str]:
    """The union of two usable (complete or partial) copies of one run, and what it took:

    same (both complete) | kept (ours already holds every item theirs has) | replaced (theirs is
    complete, ours partial) | merged (a larger partial union) | completed (the union holds every
    item: finished and scored). Raises RunConflict when the copies disagree.
    """
    _check_same_run(ours, theirs, ours_at, theirs_at)
    if ours.state == "complete":
        return ours, "same" if theirs.state == "complete" else "kept"
    if theirs.state == "complete":
        return theirs, "replaced"
    new = {k: v for k, v in theirs.records.items() if k not in ours.records}
    if not new:
        return ours, "kept"
    manifest = ours.manifest.copy_record()
    for key in DESCRIBING:
        if getattr(manifest, key) is None and getattr(theirs.manifest, key) is not None:
            setattr(manifest, key, getattr(theirs.manifest, key))
    sessions = list(manifest.sessions)
    sessions += [s for s in theirs.manifest.sessions if s not in sessions]
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    manifest.sessions = sessions
    manifest.merged = [*(manifest.merged or []), MergeRecord(items=len(new), source=Path(theirs_at).name, at=now)]
    union = {**ours.records, **new}
    order = manifest.item_ids
    records = {item: union[item] for item in order if item in union}
    if len(records) < len(order):
        manifest.updated = now
        return Inspection(ours.folder, "partial", manifest, None, records), "merged"
    from harness.runs.runner import finished

    metrics, _ = finished(manifest, list(records.values()))
    return Inspection(ours.folder, "complete", manifest, metrics, records), "completed"


def combine(copies: list[tuple[str, Inspection]]) -> Inspection:
    """One view of a run that several stores hold (`copies`: (store, inspection), in --store order).

    Complete and partial copies are merged (`merge`; a conflict raises RunConflict); a damaged or
    empty copy is passed over when another copy is usable, and shown as it is when none is.
    """
    usable = [(where, seen) for where, seen in copies if seen.state in ("complete", "partial") and seen.manifest]
    if not usable:
        return copies[0][1]
    where, view = usable[0]
    for other_at, other in usable[1:]:
        view, _ = merge(view, other, where, other_at)
    return view
