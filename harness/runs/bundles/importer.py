"""`pricebench import FILE`: merge a run bundle into a store, all or nothing.

1. Read and check the whole bundle (archive.read_bundle, runs.run_from_files): any problem stops
   the import before anything is written, and so does a run whose figures (metrics, scores, a finished
   manifest's cost, status and timings) its own predictions contradict (harness/runs/recheck.py).
2. Plan every run against the store (harness.runs.merge): a conflict (the same run id with another
   identity or another reply for an item), a damaged run folder or a run folder that is a link
   stops the import before anything is written.
3. Write each run that changes through its RunFolder, under its lock, re-reading the folder
   there (another process may have advanced it): the manifest, then predictions, then metrics
   last (as the runner does, metrics.json means "finished"). An import cut short (full disk,
   Ctrl-C) leaves each run finished or partial, never mixed; the same command finishes it.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from harness.runs.bundles.archive import RUN_MEMBER, read_bundle
from harness.runs.bundles.runs import run_from_files
from harness.errors import InputError
from harness.runs.merge import merge
from harness.jsonio import loads
from harness.runs.store import METRICS, PREDICTIONS, Inspection, RunFolder, RunStore

WRITES = {"new", "replaced", "merged", "completed"}
SAYS = {"new": "added", "same": "already in the store, identical: nothing to do",
        "kept": "the store already holds every item of it: nothing to do",
        "replaced": "the store's partial copy replaced by the complete run",
        "merged": "items merged into the store's partial copy (still partial)",
        "completed": "items merged: the run is now complete (metrics computed)"}


def waiting(rid: str):
    """What to say while another process holds a run folder's lock (a run in progress)."""
    return lambda: print(f"pricebench: waiting for another process working on run {rid}", file=sys.stderr)


@dataclass
class Imported:
    path: Path
    outcomes: dict[str, tuple[str, str]]      # run id -> (outcome, complete | partial)

    @property
    def written(self) -> int:
        return sum(outcome in WRITES for outcome, _ in self.outcomes.values())


def _bundle_files(path: Path) -> dict[str, dict]:
    """{run id: {file name: bytes}} of a bundle whose archive passed every check (archive.py)."""
    _, members = read_bundle(path)
    files: dict[str, dict] = {}
    for name, data in members.items():
        rid, file = RUN_MEMBER.fullmatch(name).groups()
        files.setdefault(rid, {})[file] = data
    if not files:
        raise InputError("holds no run", path=path, field="archive")
    return dict(sorted(files.items()))


def _plan(folder: RunFolder, incoming: Inspection, bundle: Path) -> tuple[Inspection, str]:
    """What importing `incoming` into `folder` gives (read only): (the run to write, outcome)."""
    if folder.path.is_symlink() or (folder.path.exists() and not folder.path.is_dir()):
        raise InputError("is not a run folder (a symbolic link or a file): not importing into it", path=folder.path,
                         field="--store")
    seen = folder.inspect()
    if seen.state == "empty":
        return incoming, "new"
    if seen.state == "damaged":
        raise InputError(f"run {folder.run_id} is damaged in the store ({seen.problems[0]}): `pricebench run` of "
                         f"the same job repairs it; nothing was imported", path=bundle, field="run")
    return merge(seen, incoming, f"the store {folder.path.parent}", str(bundle))


def _write(folder: RunFolder, run: Inspection) -> None:
    """Manifest first, metrics last: cut short anywhere, the folder holds a partial run that agrees
    with the bundle, which the same import then completes."""
    folder.remove_metrics()
    folder.write_manifest(run.manifest)
    folder.rewrite_predictions([run.records[i] for i in run.manifest.item_ids if i in run.records])
    if run.metrics is not None:
        folder.write_metrics(run.metrics)


def _write_as_is(folder: RunFolder, files: dict, run: Inspection) -> None:
    """A run the store does not have: its files as the bundle holds them (checked by the plan)."""
    folder.remove_metrics()
    folder.write_manifest(run.manifest)
    folder.write_predictions(bytes(files[PREDICTIONS]))
    if METRICS in files:
        folder.write_metrics(loads(bytes(files[METRICS]).decode("utf-8")))


def import_bundle(path, *, store=None, echo=None) -> Imported:
    """Merge the bundle at `path` into `store`; nothing is written unless every run can be."""
    if not Path(path).exists():
        raise InputError("bundle file not found", path=path, field="bundle")
    path, store = Path(path), RunStore(store)
    files = _bundle_files(path)

    def incoming(rid: str) -> Inspection:       # parsed when needed: one run in memory at a time
        return run_from_files(rid, files[rid], f"{path}:runs/{rid}")

    plans = {}
    for rid in files:                           # every run checked against the store before any write
        result, outcome = _plan(store.folder(rid), incoming(rid), path)
        plans[rid] = (outcome, result.state)
    outcomes = {}
    for rid, (outcome, state) in plans.items():
        if outcome in WRITES:
            folder = store.folder(rid)
            with folder.lock(on_wait=waiting(rid)):
                if outcome == "new" and folder.inspect().state == "empty":     # still nothing there
                    _write_as_is(folder, files[rid], incoming(rid))
                else:                                   # the folder moved on meanwhile: plan again
                    result, outcome = _plan(folder, incoming(rid), path)
                    if outcome in WRITES:
                        _write(folder, result)
                    state = result.state
        outcomes[rid] = (outcome, state)
        if echo:
            echo(f"run {rid} ({state}): {SAYS[outcome]}")
    return Imported(path, outcomes)
