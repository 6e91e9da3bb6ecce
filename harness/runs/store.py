"""The run store: one folder per run, named by the hash of everything that defines the run.

runs/<id>/manifest.json     spec, hashes, versions, hardware, timings, usage, cost
runs/<id>/predictions.jsonl one line per item, appended and flushed as replies arrive
runs/<id>/metrics.json      written atomically, last: its presence means "finished"

RunFolder is the one owner of these files: nothing else in pricebench knows their names.
Readers (`inspect`) never modify a folder and never raise on damage: a garbage line, a
record without an id or with a non-finite number, an unreadable manifest or metrics file
become `problems` naming the file and line, and the folder's state says what it holds.
Writers hold the folder's lock (flock on the folder itself, so no lock file is left
behind), write JSON atomically under unique temporary names, and write metrics last.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness.cache import folder_lock
from harness.errors import InputError
from harness.jsonio import atomic_file, atomic_write, finite_json, loads, read_json, write_json_atomic
from harness.runs.manifest_io import manifest_json, read_manifest
from harness.runs.record import RunManifest

MANIFEST, PREDICTIONS, METRICS = "manifest.json", "predictions.jsonl", "metrics.json"
RUN_ID = re.compile(r"[0-9a-f]{16}")
RUN_ID_PREFIX = re.compile(r"[0-9a-f]{1,16}")
COLOURS = ("green", "orange", "red")
NUMBER_FIELDS = ("guess", "truth", "error", "sle")


def default_store_dir() -> Path:
    return Path(os.environ.get("PRICEBENCH_STORE", "runs"))


def run_id(identity: dict) -> str:
    canonical = json.dumps(identity, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def record_problem(record) -> str | None:
    """Why a predictions.jsonl record cannot be used, or None when it can."""
    if not isinstance(record, dict):
        return "not a JSON object"
    if not isinstance(record.get("id"), str) or not record["id"]:
        return "no item id"
    for name in NUMBER_FIELDS:
        value = record.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"field '{name}' is not a finite number"
    if record.get("colour") not in COLOURS:
        return "field 'colour' is not green, orange or red"
    if not isinstance(record.get("parsed"), bool):
        return "field 'parsed' is not true or false"
    return None


def metrics_problem(metrics) -> str | None:
    if not isinstance(metrics, dict):
        return "not a JSON object"
    for name in ("n", "mae", "rmsle", "hit_rate"):
        value = metrics.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"field '{name}' is missing or not a finite number"
    return None


def parse_predictions(data: bytes, where) -> tuple[dict[str, dict], list[str]]:
    """predictions.jsonl bytes (whole lines) -> (usable records by id, last one wins; problems naming
    `where`:line). The one reader of the format: run folders and run bundles alike."""
    records, problems = {}, []
    kept = [(n, line) for n, line in enumerate(data.split(b"\n"), start=1) if line.strip()]
    numbered = kept
    try:        # the common case, one json.loads for the whole file: 5-10x faster on big stores
        parsed = loads("[" + b",".join(line for _, line in kept).decode("utf-8") + "]")
        if len(parsed) == len(kept):     # a line like `1,2` would shift the rest: read line by line
            numbered = [(n, record) for (n, _), record in zip(kept, parsed)]
    except (ValueError, UnicodeDecodeError, RecursionError):
        pass
    for number, record in numbered:
        if isinstance(record, bytes):
            try:
                record = loads(record.decode("utf-8"))
            except (ValueError, UnicodeDecodeError, RecursionError):
                problems.append(f"{where}:{number}: not a valid JSON line")
                continue
        problem = record_problem(record)
        if problem:
            problems.append(f"{where}:{number}: {problem}")
            continue
        records[record["id"]] = record
    return records, problems


@dataclass
class Inspection:
    """What a run folder holds, read without changing it.

    state: complete (finished, nothing damaged) | partial (killed or still running) |
    damaged (some file or line is unusable) | empty (no manifest and no predictions).
    A manifest field of the wrong type is left out of `manifest` and named in `manifest_problems`
    (the run stays usable: a report shows it as it shows any run).
    """

    folder: Path
    state: str
    manifest: RunManifest | None = None
    metrics: dict | None = None
    records: dict[str, dict] = field(default_factory=dict)     # usable records by id (last one wins)
    problems: list[str] = field(default_factory=list)          # each names the file (and line)
    manifest_problems: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.folder.name


class RunFolder:
    """One run's folder: reading, writing, locking and repairing its three files."""

    def __init__(self, path):
        self.path = Path(path)
        self._log = None

    @property
    def run_id(self) -> str:
        return self.path.name

    # --- reading (never modifies, never raises on damage) ---------------------------------------
    def _read_object(self, name: str, check) -> tuple[dict | None, str | None]:
        path = self.path / name
        try:
            obj = read_json(path)
        except FileNotFoundError:
            return None, None
        except (ValueError, UnicodeDecodeError) as e:
            return None, f"{path}: unreadable ({' '.join(str(e).split())[:120]})"
        except RecursionError:
            return None, f"{path}: unreadable (nested too deeply)"
        problem = check(obj)
        return (obj, None) if problem is None else (None, f"{path}: {problem}")

    def read_predictions(self) -> tuple[dict[str, dict], list[str]]:
        """(usable records by id, problems naming file:line); a last line cut mid-write (a killed
        run) is not a problem: it is ignored here and cut by the next writer."""
        path = self.path / PREDICTIONS
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return {}, []
        return parse_predictions(data[:data.rfind(b"\n") + 1], path)

    def inspect(self) -> Inspection:
        manifest, manifest_problems = read_manifest(self.path / MANIFEST)
        manifest_problem = manifest_problems[0] if manifest is None and manifest_problems else None
        metrics, metrics_damage = self._read_object(METRICS, metrics_problem)
        records, problems = self.read_predictions()
        problems = [p for p in (manifest_problem, metrics_damage) if p] + problems
        if manifest is None and not manifest_problem and (self.path / PREDICTIONS).exists():
            problems.insert(0, f"{self.path / MANIFEST}: missing")
        if metrics is not None and len(records) != metrics["n"]:
            problems.append(f"{self.path / PREDICTIONS}: {len(records)} usable items, metrics.json says {metrics['n']}")
        if problems:
            state = "damaged"
        elif manifest is None and not records:
            state = "empty"
        elif metrics is None:
            state = "partial"
        else:
            state = "complete"
        return Inspection(self.path, state, manifest, metrics, records, problems,
                          manifest_problems if manifest is not None else [])

    # --- writing (hold the lock) ----------------------------------------------------------------
    @contextmanager
    def lock(self, on_wait=None):
        """Exclusive lock on the folder (created if needed); `on_wait()` is called if another process holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        with folder_lock(self.path, on_wait=on_wait):
            try:
                yield self
            finally:
                self.close_log()

    def cut_torn_tail(self) -> None:
        """Drop a last line cut mid-write (a killed run), so appends start on a fresh line."""
        path = self.path / PREDICTIONS
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1
        if end < len(data):
            with open(path, "r+b") as f:
                f.truncate(end)

    def write_manifest(self, manifest: RunManifest) -> None:
        """The one writer of manifest.json: the typed record, atomically (harness/runs/manifest_io.py)."""
        write_json_atomic(self.path / MANIFEST, manifest_json(manifest))

    def write_metrics(self, metrics: dict) -> None:
        write_json_atomic(self.path / METRICS, metrics)

    def remove_metrics(self) -> None:
        (self.path / METRICS).unlink(missing_ok=True)

    def append(self, records: list[dict]) -> None:
        """Append records and flush them to disk: a killed run keeps every line written before."""
        if self._log is None:
            self._log = open(self.path / PREDICTIONS, "a", encoding="utf-8")
        text = "".join(json.dumps(finite_json(r), ensure_ascii=False, allow_nan=False) + "\n" for r in records)
        try:
            self._log.write(text)
            self._log.flush()
            os.fsync(self._log.fileno())
        except OSError:
            self.close_log(quiet=True)
            self.cut_torn_tail()        # a full disk may have left half a line: keep the file clean
            raise

    def rewrite_predictions(self, records: list[dict]) -> None:
        """Compact to one line per item, in item order (done once a run finishes)."""
        self.close_log()
        atomic_write(self.path / PREDICTIONS, "".join(
            json.dumps(finite_json(r), ensure_ascii=False, allow_nan=False) + "\n" for r in records))

    def write_predictions(self, lines: bytes) -> None:
        """Replace predictions.jsonl by whole lines already checked (a run carried in a bundle), as they are."""
        self.close_log()
        with atomic_file(self.path / PREDICTIONS, "wb") as f:
            f.write(lines)

    def close_log(self, quiet: bool = False) -> None:
        log, self._log = self._log, None
        if log is not None:
            try:
                log.close()
            except OSError:
                if not quiet:
                    raise


class RunStore:
    """The folder of run folders ($PRICEBENCH_STORE, --store, default ./runs)."""

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else default_store_dir()
        env = os.environ.get("PRICEBENCH_STORE")     # the store as the user named it; None: the implicit ./runs
        self.named = (str(root), "--store") if root is not None else (env, "PRICEBENCH_STORE") if env else None

    def _check_root(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise InputError("is not a folder (choose another --store)", path=self.root, field="--store")

    def check_readable(self) -> "RunStore":
        """A store to read (report, show, export...) that the user named must exist: a mistyped path is
        an error, never an empty store. Writing verbs (run, suite, import) create theirs; the implicit
        ./runs may be absent (nothing has run yet: a leaderboard's report shows every job to run)."""
        self._check_root()
        if self.named and not self.root.exists():
            given, field = self.named
            raise InputError("no such run store (a store to read must exist; `pricebench run`, `suite` or "
                             "`import` create one)", path=given, field=field)
        return self

    def folder(self, rid: str) -> RunFolder:
        if not RUN_ID.fullmatch(rid):
            raise InputError(f"not a run id: {rid!r}", field="run")
        self._check_root()
        return RunFolder(self.root / rid)

    def path(self, rid: str) -> Path:
        return self.folder(rid).path

    def find(self, prefix: str) -> RunFolder:
        """A run folder by id or unique id prefix (hex digits only: never a path)."""
        if not RUN_ID_PREFIX.fullmatch(prefix or ""):
            raise InputError(f"not a run id or prefix: {prefix!r} (16 hex digits, or their start)", field="run")
        self.check_readable()
        matches = [f for f in self.folders() if f.run_id.startswith(prefix)
                   and any((f.path / name).exists() for name in (MANIFEST, PREDICTIONS, METRICS))]
        if len(matches) != 1:
            what = "no run" if not matches else f"{len(matches)} runs (give more digits)"
            raise InputError(f"{what} matching {prefix!r}", path=self.root, field="run")
        return matches[0]

    def folders(self) -> list[RunFolder]:
        """Every run folder (complete, partial, damaged), by id; other entries are not ours."""
        self._check_root()
        try:
            entries = sorted(self.root.iterdir()) if self.root.exists() else []
        except NotADirectoryError:
            raise InputError("is not a folder", path=self.root, field="--store") from None
        return [RunFolder(p) for p in entries if RUN_ID.fullmatch(p.name) and p.is_dir() and not p.is_symlink()]


__all__ = ["Inspection", "RunFolder", "RunStore", "default_store_dir", "parse_predictions", "read_json", "run_id",
           "write_json_atomic"]
