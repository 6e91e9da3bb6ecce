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
CHUNK = 2**20


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


def capped_lines(f, path, *, cap: int = MAX_LINE_BYTES, what: str = "a JSON line", seen=None, skip_long=False):
    """(line number, bytes) of an open binary file, each line read in chunks and refused (an InputError
    naming file:line) once it passes `cap` bytes, before the rest of it is read: memory stays near
    the cap. `seen(chunk)` gets every byte read (a file's hash); `skip_long`: a longer line is read
    past and yielded as None."""
    number = 0
    while line := _line(f, cap, seen):
        number += 1
        if len(line) > cap and not line.endswith(b"\n"):     # at most cap + 1 bytes were read
            if not skip_long:
                raise InputError(too_long(cap, what), path=path, line=number)
            del line
            while rest := f.readline(CHUNK):
                if seen:
                    seen(rest)
                if rest.endswith(b"\n"):
                    break
            yield number, None
            continue
        yield number, bytes(line)


def _line(f, cap: int, seen) -> bytes | bytearray:
    """One line, or its first cap + 1 bytes or so: a chunk at a time, never the rest of a long line."""
    first = min(CHUNK, cap + 1)
    buf = f.readline(first)
    if seen and buf:
        seen(buf)
    if len(buf) < first or buf.endswith(b"\n"):
        return buf
    buf = bytearray(buf)
    while len(buf) <= cap:
        more = f.readline(min(CHUNK, cap + 1 - len(buf)))
        if seen and more:
            seen(more)
        buf += more
        if not more or more.endswith(b"\n"):
            break
    return buf


def too_long(cap: int, what: str) -> str:
    return f"line is longer than {cap:,} bytes: not {what}"


def read_capped(path, *, cap: int, what: str = "this file") -> bytes:
    """A whole file of at most `cap` bytes, reading no more than cap + 1 (a larger one is refused)."""
    with open(path, "rb") as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        raise InputError(f"is larger than {cap:,} bytes: not {what}", path=path)
    return data
