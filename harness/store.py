"""The run store: one folder per run, named by the hash of everything that defines the run.

runs/<id>/manifest.json     spec, hashes, versions, hardware, timings, usage, cost
runs/<id>/predictions.jsonl one line per item, appended and flushed as replies arrive
runs/<id>/metrics.json      written atomically, last: its presence means "finished"
A killed run leaves a valid prefix of predictions.jsonl (a torn last line is dropped),
so the next invocation of the same run asks only for the items still missing.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path


def default_store_dir() -> Path:
    return Path(os.environ.get("PRICEBENCH_STORE", "runs"))


def run_id(identity: dict) -> str:
    canonical = json.dumps(identity, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def write_json_atomic(path: Path, obj) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


class RunStore:
    def __init__(self, root=None):
        self.root = Path(root) if root is not None else default_store_dir()

    def path(self, rid: str) -> Path:
        return self.root / rid

    def find(self, prefix: str) -> Path:
        """A run folder by id or unique id prefix."""
        matches = sorted(p for p in self.root.glob(f"{prefix}*") if (p / "manifest.json").exists())
        if len(matches) != 1:
            from harness.errors import InputError
            what = "no run" if not matches else f"{len(matches)} runs"
            raise InputError(f"{what} matching {prefix!r} in {self.root}", field="run")
        return matches[0]

    def runs(self) -> list[Path]:
        return sorted(p.parent for p in self.root.glob("*/metrics.json"))


class PredictionLog:
    """predictions.jsonl: appended per reply, flushed per batch, read back tolerantly."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file = None

    def read(self) -> dict[str, dict]:
        """Last record per item id; a torn final line (killed mid-write) is cut off the file."""
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(end)
        records = {}
        for line in data[:end].splitlines():
            if line.strip():
                record = json.loads(line)
                records[record["id"]] = record
        return records

    def append(self, records: list[dict]) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        for record in records:
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def rewrite(self, records: list[dict]) -> None:
        """Compact to one line per item, in item order (done once a run finishes)."""
        self.close()
        tmp = self.path.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
