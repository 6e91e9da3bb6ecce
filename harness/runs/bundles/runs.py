"""A run's files inside a bundle -> the run as the store's reader sees it (an `Inspection`), checked.

A bundle carries whole runs, so its files are held to a stricter standard than a run folder on
disk (which may be repaired): every line readable (the store's own parser), no line cut short,
a manifest whose identity hashes to the run id (the id names what was run) and whose task, model,
quantization and prompt style are the identity's, every record an item of the run, and for a
finished run a metrics.json whose item count matches. Then what the run asserts is recomputed, never
trusted (harness/runs/recheck.py): each record's score from its guess and truth, every metric from the
records, and a finished manifest's status, usage, cost and timings; a run that states any of them
otherwise is refused, naming the run, the file and the field. The same check runs on export (what is
written can be imported) and on import. A bundle is whole and consistent after these checks, not
proven true: `pricebench verify RUN` recomputes a sample of a run's replies.
"""
from __future__ import annotations

from pathlib import Path

from harness.errors import InputError
from harness.jsonio import loads
from harness.runs.manifest_io import read_manifest
from harness.runs.recheck import MANIFEST_FIELDS, disagreement
from harness.runs.record import RunManifest
from harness.runs.store import METRICS, MANIFEST, PREDICTIONS, Inspection, metrics_problem, parse_predictions, run_id


# manifest fields a bundle may not hold in a wrong shape (what the run is, what it says it scored)
STRICT = ("run_id", "identity", "task", "model", "quant", "prompt_style", "item_ids", "n_items", *MANIFEST_FIELDS)
SHAPED = ("sessions", "info")       # these must be of their type; an odd session inside is left out


def _json(data, where: str):
    try:
        return loads(bytes(data).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InputError("is not valid JSON", path=where) from None


def _manifest(data, rid: str, where: str) -> RunManifest:
    """The run's manifest, read by the store's one reader; a bundle's must also be whole: every
    field that defines or scores the run well formed, and naming what its identity hashes."""
    manifest, problems = read_manifest(data, where)
    if manifest is None:
        raise InputError(problems[0])
    wrong = next((p for p in problems if p.field in STRICT or (p.field in SHAPED and len(p.loc) == 1)), None)
    if wrong is not None:
        raise InputError(wrong)
    if manifest.run_id != rid:
        raise InputError(f"says run {manifest.run_id!r}, but it is filed under run {rid}", path=where,
                         field="run_id")
    identity = manifest.identity
    if identity is None or run_id(identity) != rid:
        raise InputError(f"its identity does not hash to run id {rid} (edited, or not a pricebench run)",
                         path=where, field="identity")
    task, model = manifest.task_identity, manifest.model_identity
    named = {"task": task.get("name"), "model": model.get("name"), "quant": model.get("quant"),
             "prompt_style": identity.get("prompt_style")}
    for key, value in named.items():        # what reports show must be what the id stands for
        if getattr(manifest, key) != value:
            raise InputError(f"is {getattr(manifest, key)!r}, but the run's identity says {value!r}", path=where,
                             field=key)
    items = manifest.item_ids
    if not items or not all(items) or len(set(items)) != len(items):
        raise InputError("must be a list of distinct item ids", path=where, field="item_ids")
    if manifest.n_items is not None and manifest.n_items != len(items):
        raise InputError(f"says {manifest.n_items!r}, item_ids lists {len(items)}", path=where, field="n_items")
    return manifest


def run_from_files(rid: str, files: dict, where: str) -> Inspection:
    """Run `rid` from its bundle files ({file name: bytes}); `where` names it in errors
    ('ARCHIVE:runs/<id>'). Raises InputError naming the file, line and field."""
    for name in (MANIFEST, PREDICTIONS):
        if name not in files:
            raise InputError(f"run {rid} has no {name}", path=where)
    manifest = _manifest(files[MANIFEST], rid, f"{where}/{MANIFEST}")
    data, at = bytes(files[PREDICTIONS]), f"{where}/{PREDICTIONS}"
    if data and not data.endswith(b"\n"):
        raise InputError("its last line is cut short", path=at)
    records, problems = parse_predictions(data, at)
    if problems:
        raise InputError(problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
    wanted = set(manifest.item_ids)
    stray = next((item for item in records if item not in wanted), None)
    if stray is not None:
        raise InputError(f"item {stray!r} is not an item of run {rid} (manifest.json item_ids)", path=at)
    metrics = None
    if METRICS in files:
        at = f"{where}/{METRICS}"
        metrics = _json(files[METRICS], at)
        problem = metrics_problem(metrics)
        if problem:
            raise InputError(problem, path=at)
        if not (metrics["n"] == len(records) == len(wanted)):
            raise InputError(f"says {metrics['n']} items, predictions.jsonl holds {len(records)} of the run's "
                             f"{len(wanted)}", path=at, field="n")
    run = Inspection(Path(rid), "complete" if metrics is not None else "partial", manifest, metrics, records)
    wrong = disagreement(run, manifests=True)
    if wrong is not None:
        raise InputError(f"run {rid}: {wrong.reason}", path=f"{where}/{wrong.file}", field=wrong.field)
    return run
