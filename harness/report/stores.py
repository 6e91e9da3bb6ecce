"""Several run stores read as one (`pricebench report --store A --store B`): which copy a report shows.

A run id held by several stores is resolved by harness.runs.merge, the rules `pricebench import`
follows, so a report over stores A and B shows what one store holding both would show: identical
copies are one row, a complete copy wins over a partial (or damaged) one, partial copies merge
item by item (and are scored when their union is complete), and two different contents under
one id are a `conflict` row, never ranked. A report never stops for one run: a conflict is shown
like a damaged run, naming the stores, the run and the item.
"""
from __future__ import annotations

from harness.runs.merge import RunConflict, combine
from harness.runs.store import Inspection, RunStore


def store_list(store) -> list:
    """--store as given: one folder (None: the default store), or a list of them."""
    if isinstance(store, (list, tuple)):
        return list(store) or [None]
    return [store]


def readable_stores(store) -> list:
    """store_list, each store the user named checked to exist (store.RunStore.check_readable)."""
    stores = store_list(store)
    for each in stores:
        RunStore(each).check_readable()
    return stores


def job_status_across(job, stores: list, *, data_dir=None, task_cache=None):
    """Where a leaderboard job stands over all stores (a suite.JobStatus; state 'conflict' when two
    stores hold different contents under its run id)."""
    from harness.suite import JobStatus, job_status

    statuses = [job_status(job, data_dir=data_dir, store=s, task_cache=task_cache) for s in stores]
    first = statuses[0]
    if len(stores) == 1 or first.run_id is None:        # published or unavailable: the same everywhere
        return first
    roots = [RunStore(s) for s in stores]
    try:
        view = combine([(str(r.root), r.folder(first.run_id).inspect()) for r in roots])
    except RunConflict as e:
        return JobStatus(job, "conflict", first.run_id, total=first.total, detail=e.reason)
    if view.state == "complete":
        return JobStatus(job, "cached", first.run_id, len(view.records), first.total, inspection=view)
    return max(statuses, key=lambda s: s.done)     # the most advanced copy says where the job stands


def runs_across(stores: list):
    """(run id, the run to show, RunConflict or None) for every run folder of every store, by id;
    on a conflict the run to show is the first store's copy (for its task and label)."""
    copies: dict[str, list[tuple[str, object]]] = {}
    for store in stores:
        root = RunStore(store)
        for folder in root.folders():
            copies.setdefault(folder.run_id, []).append((str(root.root), folder))
    for rid in sorted(copies):
        seen: list[tuple[str, Inspection]] = [(where, folder.inspect()) for where, folder in copies[rid]]
        try:
            yield rid, combine(seen), None
        except RunConflict as e:
            yield rid, seen[0][1], e
