"""`pricebench export-eee`: stored runs, or a leaderboard's, as Every Eval Ever files in a folder of its own.

OUT/data/pricebench_<task>/<developer>/<model>/<uuid>.json           one aggregate log per run
OUT/data/pricebench_<task>/<developer>/<model>/<uuid>_samples.jsonl  its per-item rows
OUT/.pricebench-eee.json                                              the marker: every file written here (sha256)
(the datastore layout EEE's validator requires; the records are built by harness.exports.eee_records).

Runs are read only through the store's reader (`RunFolder.inspect`); a leaderboard's rows come
from `report.collect.entries_from_leaderboard`, so the export holds exactly what its report ranks,
and lists the jobs it leaves out (not run, partial, damaged, failed). Everything is built in
memory before OUT is touched (a failure writes nothing), then written by the owned-folder rule
(harness.owned): a file pricebench did not write is never replaced (one where an export
goes is an error naming it), a user's other files in OUT stay, and a non-empty OUT without the
marker, a file or a link is refused.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import owned
from harness.exports.eee_records import Exported, export_row
from harness.errors import InputError
from harness.jsonio import atomic_write, write_json_atomic
from harness.runs.store import RUN_ID_PREFIX, RunStore

MARKER = ".pricebench-eee.json"
WRITTEN_BY = "pricebench export-eee"
EEE = owned.Owner(MARKER, WRITTEN_BY, "OUT_DIR")


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


def check_out_dir(out: Path) -> None:
    """Refuse an OUT that is a file or a link, or a non-empty folder an export did not write."""
    owned.folder_state(out, EEE)


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
    """Each run's samples and aggregate into OUT by the owned-folder rule: earlier exports' files stay
    (exports add up), a file pricebench did not write is never replaced."""
    with owned.writing(out, EEE, keep_others=True) as staging:
        for row, _ in built:
            folder = staging / row.folder
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
