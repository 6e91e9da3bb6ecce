"""JSON files pricebench writes and reads: atomic, always valid JSON, strict on the way in.

Every file is written to a unique temporary sibling, fsynced and renamed into place (readers see
the old file or the new one, never half), with ordinary permissions. JSON has no NaN or
Infinity: non-finite floats are written as null, and `loads` refuses the literals Python's json
module would accept.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def finite_json(obj):
    """JSON has no NaN or Infinity: non-finite floats become null, so every file stays valid JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


@contextmanager
def atomic_file(path: Path, mode: str = "w"):
    """A file object on a unique temporary sibling of `path`; when the block ends well it is fsynced
    and renamed over `path` (readers see old or new, never half); on any failure it is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: Path, text: str) -> None:
    """Write to a unique temporary sibling, fsync, rename over `path`: readers see old or new, never half."""
    with atomic_file(path) as f:
        f.write(text)


def write_json_atomic(path: Path, obj) -> None:
    atomic_write(path, json.dumps(finite_json(obj), indent=2, ensure_ascii=False, default=str, allow_nan=False))


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def loads(text: str):
    """json.loads that refuses NaN / Infinity (Python accepts them; JSON does not)."""
    return json.loads(text, parse_constant=_reject_constant)


def read_json(path: Path):
    return loads(Path(path).read_text(encoding="utf-8"))
