"""`pricebench export-eee`: stored runs, or a leaderboard's, as Every Eval Ever files in a folder of its own.

OUT/data/pricebench_<task>/<developer>/<model>/<uuid>.json           one aggregate log per run
OUT/data/pricebench_<task>/<developer>/<model>/<uuid>_samples.jsonl  its per-item rows
OUT/.pricebench-eee.json                                              the marker: every file written here
(the datastore layout EEE's validator requires; the records are built by harness.eee_records).

Runs are read only through the store's reader (`RunFolder.inspect`); a leaderboard's rows come
from `report.collect.entries_from_leaderboard`, so the export holds exactly what its report ranks,
and lists the jobs it leaves out (not run, partial, damaged, failed). Everything is built in
memory before OUT is touched (a failure writes nothing); each file is written atomically, the
samples before the aggregate that points at them, with OUT locked. A file pricebench did not
write is never overwritten: an OUT that is a file, a link, or holds any other file is refused.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.cache import folder_lock
from harness.eee_records import Exported, export_row
from harness.errors import InputError
from harness.jsonio import atomic_write, read_json, write_json_atomic
from harness.runs.store import RUN_ID_PREFIX, RunStore

MARKER = ".pricebench-eee.json"
WRITTEN_BY = "pricebench export-eee"


@dataclass
class ExportResult:
    """What an export wrote (rows with their item counts) and which rows it left out, and why."""

    out: Path
    written: list[tuple[Exported, int]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _ordered(seen) -> list[dict]:
    """A complete run's records in its manifest's item order."""
    order = {item_id: n for n, item_id in enumerate(seen.manifest.item_ids or [] if seen.manifest else [])}
    return sorted(seen.records.values(), key=lambda r: order.get(r["id"], len(order)))


def _reads_prompt(model: str) -> bool:
    """Does the backend prompt a model (hf, APIs), or read the item itself (recorded runs, baselines)?"""
    from harness.predictors import predictor_class

    try:
        cls = predictor_class(model.partition(":")[0])
    except InputError:
        return True
    return True if cls is None else bool(cls.reads_prompt)


class TaskItems:
    """Each task's items and prompts, loaded once (all of its test items, for any run's slice);
    a task that cannot be loaded gives None: its rows name the item's title instead of its text."""

    def __init__(self, refs: dict[str, str], data_dir):
        self.refs, self.data_dir, self.tasks = refs, data_dir, {}

    def task(self, name: str):
        if name not in self.tasks:
            from harness.tasks import load_task

            try:
                self.tasks[name] = load_task(self.refs.get(name, name), data_dir=self.data_dir, eval_slice="all")
                self.tasks[name].eval_items()
            except Exception:  # noqa: BLE001 - the items are optional: without them a row names titles
                self.tasks[name] = None
        return self.tasks[name]

    def inputs(self, task, records: list[dict], style: str, reads_prompt: bool) -> dict:
        """item id -> (its text, the prompt the model saw if it can be rebuilt exactly, True)."""
        from harness.prompts import build_requests

        if task is None:
            return {}
        items = {item.id: item for item in task.eval_items()}
        known = [(r, items[r["id"]]) for r in records if r["id"] in items and items[r["id"]].price == r["truth"]]
        try:
            requests = build_requests(task, [item for _, item in known], style, reads_prompt=reads_prompt)
        except (InputError, ValueError):          # e.g. a prompt cut by a tokenizer that is not available
            requests = [None] * len(known)
        inputs = {}
        for (record, item), request in zip(known, requests):
            formatted = None
            if reads_prompt and request is not None and request.prompt_hash == record.get("prompt_hash"):
                formatted = request.prompt if request.style == "base" else \
                    json.dumps(list(request.messages), ensure_ascii=False)
            inputs[record["id"]] = (item.text, formatted, True)
        return inputs


def rows_for_runs(run_ids: list[str], store=None) -> list[tuple]:
    """(entry, inspection) of each run id; a run that is not complete is an error (nothing is written)."""
    from harness.report.collect import Missing, from_inspection

    rows = []
    for rid in run_ids:
        seen = RunStore(store).find(rid).inspect()
        row = from_inspection(seen)
        if isinstance(row, Missing):
            raise InputError(f"run {seen.run_id} is {row.state} ({row.detail}): only complete runs are exported; "
                             f"a re-run of its command completes it", path=seen.folder, field="run")
        rows.append((row, seen))
    return rows


def rows_for_leaderboard(board, *, data_dir=None, store=None) -> tuple[list[tuple], list[str]]:
    """The rows a leaderboard's report ranks (runs and published figures), and the jobs left out."""
    from harness.report.collect import entries_from_leaderboard

    entries, missing = entries_from_leaderboard(board, data_dir=data_dir, store=store)
    rows, skipped = [], [f"{m.description}: {m.state}{': ' + m.detail if m.detail else ''}" for m in missing]
    for entry in entries:
        if entry.run_id is None:
            rows.append((entry, None))
            continue
        seen = RunStore(store).folder(entry.run_id).inspect()     # all of its records (the report keeps a few)
        if seen.state == "complete":
            rows.append((entry, seen))
        else:
            skipped.append(f"{entry.label} (run {entry.run_id}): {seen.state} since the leaderboard was read")
    return rows, skipped


def _marked_files(out: Path) -> set[str] | None:
    """The files an earlier export wrote into `out` (from its marker), or None when it has no marker."""
    marker = out / MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        content = read_json(marker)
    except (ValueError, UnicodeDecodeError, RecursionError, OSError):
        return None
    files = content.get("files") if isinstance(content, dict) and content.get("written_by") == WRITTEN_BY else None
    return {f for f in files if isinstance(f, str)} if isinstance(files, list) else None


def check_out_dir(out: Path) -> set[str]:
    """Refuse an OUT that is a file or a link, or that holds a file an export did not write; return
    the files earlier exports wrote there."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InputError("is a file or a symbolic link, not a folder: choose another output folder", path=out,
                         field="OUT_DIR")
    if not out.exists():
        return set()
    ours = _marked_files(out)
    for root, dirs, files in os.walk(out):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            path = Path(root, name)
            rel = path.relative_to(out).as_posix()
            if rel == MARKER and ours is not None:
                continue
            if ours is None or rel not in ours or path.is_symlink():
                raise InputError(f"holds {rel}, which pricebench export-eee did not write: not writing into this "
                                 f"folder (choose an empty or new one)", path=out, field="OUT_DIR")
    return ours or set()


def build(rows: list[tuple], tasks: TaskItems, skipped: list[str]) -> list[tuple[Exported, int]]:
    """Every row's records, in memory (a duplicate of an exported row is left out and listed)."""
    exported_at, built, paths = int(time.time()), [], set()
    for entry, seen in rows:
        task = tasks.task(entry.task)
        records = _ordered(seen) if seen is not None else None
        reads_prompt = _reads_prompt(entry.model)
        inputs = tasks.inputs(task, records, entry.prompt or "base", reads_prompt) if records else {}
        row = export_row(entry, records, inputs, task=task, reads_prompt=reads_prompt, exported_at=exported_at)
        path = row.folder / row.file_id
        if path in paths:
            skipped.append(f"{entry.label} ({entry.task}): the same run as a row already exported")
            continue
        paths.add(path)
        built.append((row, len(records or [])))
    return built


def write(out: Path, built: list[tuple[Exported, int]]) -> None:
    """Write the files under a lock on OUT: the marker first (naming every file), then each run's
    samples and its aggregate, each atomically."""
    check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out):
        ours = check_out_dir(out)             # again, now that no other export can write here
        planned = set()
        for row, _ in built:
            planned.add(str(row.folder / f"{row.file_id}.json"))
            if row.samples:
                planned.add(str(row.folder / f"{row.file_id}_samples.jsonl"))
        write_json_atomic(out / MARKER, {"written_by": WRITTEN_BY, "files": sorted(ours | planned)})
        for row, _ in built:
            folder = out / row.folder
            folder.mkdir(parents=True, exist_ok=True)
            if row.samples:
                atomic_write(folder / f"{row.file_id}_samples.jsonl", "".join(line + "\n" for line in row.samples))
            write_json_atomic(folder / f"{row.file_id}.json", row.aggregate)


def export_eee(sources: list[str], out_dir, *, data_dir=None, store=None) -> ExportResult:
    """Export run ids (or unique prefixes), or one leaderboard YAML's rows, into `out_dir`."""
    out = Path(os.path.abspath(out_dir))
    boards = [s for s in sources if s.endswith((".yaml", ".yml"))]
    if boards and len(sources) > 1:
        raise InputError("give one leaderboard .yaml, or run ids, not both", field="sources")
    for source in sources:
        if not boards and not RUN_ID_PREFIX.fullmatch(source):
            raise InputError(f"{source!r} is neither a run id (16 hex digits, or their start) nor a leaderboard "
                             f".yaml", field="sources")
    check_out_dir(out)                        # refuse a foreign folder before any work
    skipped: list[str] = []
    if boards:
        from harness.suite import board_with_checkpoints, load_leaderboard

        board = board_with_checkpoints(load_leaderboard(boards[0]), data_dir=data_dir)
        rows, skipped = rows_for_leaderboard(board, data_dir=data_dir, store=store)
        refs = {Path(t).stem if t.endswith((".yaml", ".yml")) else t: t for t in board.tasks}
    else:
        rows, refs = rows_for_runs(sources, store), {}
    built = build(rows, TaskItems(refs, data_dir), skipped)
    if built:
        write(out, built)
    return ExportResult(out, built, skipped)
