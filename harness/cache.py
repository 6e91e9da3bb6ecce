"""Where pricebench keeps what it downloads, converts or fits: $PRICEBENCH_CACHE, else
~/.cache/pricebench; and a file lock so two processes never do the same slow one-time work."""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("PRICEBENCH_CACHE", Path.home() / ".cache" / "pricebench"))


@contextmanager
def file_lock(path: Path):
    """Serialise slow one-time work (downloads, conversions) across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
