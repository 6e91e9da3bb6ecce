"""JSON files pricebench writes and reads: atomic, always valid JSON, strict on the way in.

Every file is written to a unique temporary sibling, fsynced and renamed into place (readers see
the old file or the new one, never half), with ordinary permissions. JSON has no NaN or
Infinity: non-finite floats are written as null, and `loads` refuses the literals Python's json
module would accept. Files from elsewhere (data, raw metadata, recorded runs, markers) are read
line by line with a cap applied while reading: a huge line with no newline costs at most the cap.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from harness.errors import InputError

MAX_LINE_BYTES = 16 * 2**20     # one JSON line of a file from elsewhere (an item, a raw product, a recorded run)


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
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from e
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:                    # name the user's file, never the temporary one
        Path(tmp).unlink(missing_ok=True)
        if e.filename in (tmp, str(path)) or e.filename is None:
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
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


def capped_lines(f, path, *, cap: int = MAX_LINE_BYTES, what: str = "a JSON line"):
    """(line number, bytes) of an open binary file, each line read with at most cap + 1 bytes: a
    longer one is an InputError naming file:line before the rest of it is read."""
    number = 0
    while line := f.readline(cap + 1):
        number += 1
        if len(line) > cap and not line.endswith(b"\n"):
            raise InputError(f"line is longer than {cap:,} bytes: not {what}", path=path, line=number)
        yield number, line


def read_capped(path, *, cap: int, what: str = "this file") -> bytes:
    """A whole file of at most `cap` bytes, reading no more than cap + 1 (a larger one is refused)."""
    with open(path, "rb") as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        raise InputError(f"is larger than {cap:,} bytes: not {what}", path=path)
    return data
