"""`pricebench export runs RUN... FILE`: runs of a store, by id -> one bundle (the CLI turns a
leaderboard into the ids of its runs with harness.suite.stored_runs).

Each run's files are read under the run folder's lock (a run being written is exported as it is
when its writer lets go), checked as an import will check them, and written with the bundle
manifest in one atomic step. FILE may replace only a bundle pricebench wrote (the owned-output
rule, harness.owned.check_file): any other existing file, a folder or a symbolic link is
refused and left as it was. A run file is read with its size capped (a bundle member's limit).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness import owned
from harness.jsonio import read_capped
from harness.runs.bundles.archive import MAX_MEMBER_BYTES, RUN_FILES, is_bundle, write_bundle
from harness.runs.bundles.importer import waiting
from harness.runs.bundles.runs import run_from_files
from harness.errors import InputError
from harness.runs.store import PREDICTIONS, RunFolder, RunStore


@dataclass
class Exported:
    path: Path
    runs: dict[str, str]                        # run id -> complete | partial
    skipped: list[str] = field(default_factory=list)    # leaderboard jobs with nothing to export, and why
    size: int = 0


def _check_target(out: Path) -> None:
    owned.check_file(out, is_bundle, what="a bundle", field="FILE")


def _run_files(folder: RunFolder) -> dict[str, bytes]:
    """The run's files as they are on disk (a torn last line left out), read under the folder's lock."""
    files = {}
    with folder.lock(on_wait=waiting(folder.run_id)):
        for name in RUN_FILES:
            try:
                data = read_capped(folder.path / name, cap=MAX_MEMBER_BYTES, what="a run file a bundle can hold")
            except FileNotFoundError:
                continue
            files[name] = data[:data.rfind(b"\n") + 1] if name == PREDICTIONS else data
    files.setdefault(PREDICTIONS, b"")
    return files


def export_runs(refs: list[str], out, *, store=None, skipped=()) -> Exported:
    """Write the runs named by `refs` (run ids or unique prefixes) to `out`; `skipped`: what the caller
    left out (a leaderboard's jobs with nothing stored), said in the error when nothing is left."""
    out, store, skipped = Path(out), RunStore(store), list(skipped)
    _check_target(out)
    store.check_readable()              # a store named but absent is an error, never "nothing to export"
    folders: dict[str, RunFolder] = {}
    for ref in refs:
        found = store.find(ref)
        folders[found.run_id] = found
    if not folders:
        raise InputError("nothing to export: no run of these in the store" + (f" ({'; '.join(skipped[:3])})"
                         if skipped else ""), path=store.root, field="--store")
    members, runs = [], {}
    for rid in sorted(folders):
        files = _run_files(folders[rid])
        try:
            seen = run_from_files(rid, files, f"{folders[rid].path}")     # what import will accept
        except InputError as e:
            raise InputError(f"run {rid} cannot be exported: {e}; `pricebench run` of the same job repairs "
                             f"a damaged run", field="run") from None
        runs[rid] = seen.state
        members += [(f"runs/{rid}/{name}", files[name]) for name in RUN_FILES if name in files]
    write_bundle(out, members)
    return Exported(out, runs, skipped, out.stat().st_size)
