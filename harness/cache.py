"""Where pricebench keeps what it downloads, converts or fits: $PRICEBENCH_CACHE, else
~/.cache/pricebench; a file lock so two processes never do the same slow one-time work; and
a folder lock (flock on the folder's own descriptor: no lock file is left behind) for run
folders and report output folders."""
from __future__ import annotations

import errno
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


@contextmanager
def folder_lock(path: Path, *, on_wait=None, unsupported_ok: bool = False):
    """Exclusive lock on an existing folder while the block runs; `on_wait()` is called when another
    process holds it; `unsupported_ok`: on a file system without flock, go on unlocked."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait:
                    on_wait()
                fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as e:
            if not unsupported_ok or e.errno not in (errno.ENOLCK, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
                raise
        yield
    finally:
        os.close(fd)                # closing the descriptor releases the lock
