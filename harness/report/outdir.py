"""The report's output folder (`--out`) is pricebench's own, and is replaced as a whole.

- It carries a marker file (`.pricebench-report`); a non-empty folder without it, a file or a
  symbolic link is refused, never emptied.
- A report is built in a temporary sibling, given ordinary permissions (0755 folders, 0644
  files) and swapped in atomically; the previous report is removed only after the swap (and
  only when it carries the marker). A failed build removes its temporary folder and leaves the
  previous report untouched.
- Two builds into one folder both finish: the swaps are serialised by a lock on the parent
  folder (flock on the folder itself, so no lock file is left behind). Each build holds a lock
  on its temporary folder, so one killed outright (SIGKILL) leaves an unlocked folder that the
  next build removes.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import shutil
import stat
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from harness.cache import folder_lock
from harness.errors import InputError

MARKER = ".pricebench-report"
DIR_MODE, FILE_MODE = 0o755, 0o644
# What a report written before the marker existed holds (it may be replaced, nothing else).
LEGACY = {"index.html", "compare.html", "leaderboard.csv", "assets", "runs", "tasks"}


@contextmanager
def replacing_folder(out_dir, marker: dict):
    """Yield an empty staging folder to fill; on success it gets the marker and ordinary
    permissions and replaces `out_dir` atomically; on any failure it is removed."""
    out = Path(os.path.abspath(out_dir))
    check_out_dir(out)                     # refuse a foreign folder before any work
    staging, alive = _staging(out), None
    try:
        alive = _claim(staging)            # a build killed outright leaves an unlocked folder: swept later
        try:
            yield staging
            (staging / MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
            _ordinary_permissions(staging)
        except OSError as e:               # name the report, not the temporary folder about to go
            raise OSError(e.errno, e.strerror, str(out)) from e
        with folder_lock(out.parent, unsupported_ok=True):
            _sweep_abandoned(out, staging)
            _swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if alive is not None:
            os.close(alive)


def check_out_dir(out_dir) -> None:
    """Refuse now an --out a report could not replace (a suite checks before running for hours)."""
    out = Path(os.path.abspath(out_dir))
    if out.parent == out:
        raise InputError("is a file system root: choose a folder for the report", path=out, field="--out")
    _out_state(out)


def _is_ours(folder: Path) -> bool:
    """Did pricebench write this folder? Its marker says so (or, for an older report, its contents do)."""
    marker = folder / MARKER
    try:
        if not stat.S_ISREG(os.lstat(marker).st_mode):
            return False
        with open(marker, encoding="utf-8") as f:
            return json.loads(f.readline(4096)).get("written_by") == "pricebench"
    except FileNotFoundError:
        return _is_legacy_report(folder)
    except (OSError, ValueError, AttributeError):
        return False


def _is_legacy_report(folder: Path) -> bool:
    """A report from before the marker: only the files pricebench writes, and its own script."""
    try:
        names = set(os.listdir(folder))
        if not names or not names <= LEGACY or "assets" not in names:
            return False
        with open(folder / "assets" / "report.js", encoding="utf-8") as f:
            if not f.readline().startswith("// pricebench report:"):
                return False
        for sub, allowed in (("assets", {"report.js", "style.css"}), ("runs", None), ("tasks", None)):
            path = folder / sub
            if sub not in names:
                continue
            if path.is_symlink() or not path.is_dir():
                return False
            for child in os.scandir(path):
                if not child.is_file(follow_symlinks=False) or (allowed is not None and child.name not in allowed) \
                        or (allowed is None and not child.name.endswith(".html")):
                    return False
        return all(os.path.isfile(folder / n) and not os.path.islink(folder / n) for n in names - {"assets", "runs",
                                                                                                       "tasks"})
    except (OSError, UnicodeDecodeError):
        return False


def _out_state(out: Path) -> str:
    """'absent' | 'empty' | 'ours'; anything else is refused with one line naming the path."""
    try:
        mode = os.lstat(out).st_mode
    except FileNotFoundError:
        return "absent"
    except OSError as e:
        raise InputError(f"cannot be read ({os.strerror(e.errno)}): choose another --out", path=out,
                         field="--out") from None
    if stat.S_ISLNK(mode):
        raise InputError("is a symbolic link; pricebench replaces its report folder as a whole and does not follow "
                         "links: give the folder itself, or a new one, as --out", path=out, field="--out")
    if not stat.S_ISDIR(mode):
        raise InputError("is a file, not a folder: choose a new or empty folder for --out (the report is a folder "
                         "of pages)", path=out, field="--out")
    try:
        with os.scandir(out) as it:
            empty = next(it, None) is None
    except OSError as e:
        raise InputError(f"cannot be read ({os.strerror(e.errno)}): choose another --out", path=out,
                         field="--out") from None
    if empty:
        return "empty"
    if _is_ours(out):
        return "ours"
    raise InputError(f"is not empty and was not written by pricebench (no {MARKER} file); a report replaces its "
                     f"whole folder, so nothing there was touched: choose a new or empty folder for --out",
                     path=out, field="--out")


def _staging(out: Path) -> Path:
    """A new, empty, hidden sibling of `out` (same file system, so it can be renamed into place)."""
    parent = out.parent
    missing = []
    while not os.path.lexists(parent):
        missing.append(parent)
        parent = parent.parent
    where = out.parent
    try:
        for where in reversed(missing):
            try:
                os.mkdir(where)
            except FileExistsError:
                continue
            os.chmod(where, DIR_MODE)
        where = out.parent
        return Path(tempfile.mkdtemp(prefix=f".{out.name[:48]}.pricebench-", suffix=".tmp", dir=out.parent))
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        raise InputError(f"cannot write the report here ({reason}): choose a writable --out", path=where,
                         field="--out") from None


def _claim(folder: Path) -> int:
    """Hold a lock on our own staging folder for as long as this build lives (the descriptor is returned)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        pass
    return fd


def _sweep_abandoned(out: Path, current: Path, min_age_s: float = 5.0) -> None:
    """Remove temporary siblings of `out` left by a build that was killed outright (SIGKILL, power cut).

    Only our own names (`.<out>.pricebench-...`), only folders no live build holds locked, and
    only ones untouched for a few seconds (a new staging folder is locked right after it is made).
    """
    prefix = f".{out.name[:48]}.pricebench-"
    try:
        candidates = [e for e in os.scandir(out.parent) if e.name.startswith(prefix)
                      and e.path != str(current) and e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    now = time.time()
    for entry in candidates:
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime < min_age_s:
                continue
            fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue                   # a live build's folder
        else:
            shutil.rmtree(entry.path, ignore_errors=True)
        finally:
            os.close(fd)


def _swap_in(staging: Path, out: Path) -> None:
    """Put the finished report at `out` (under the parent's lock): readers see the old or the new one."""
    state = _out_state(out)            # again: another process may have written there meanwhile
    if state in ("absent", "empty"):
        os.rename(staging, out)        # over an empty folder: atomic on POSIX; a non-empty one fails
        return
    if _exchange(staging, out):
        old = staging                  # the previous report now sits at the temporary name
    else:
        old = out.parent / f".{out.name[:48]}.pricebench-old-{uuid.uuid4().hex[:12]}"
        os.rename(out, old)
        try:
            os.rename(staging, out)
        except BaseException:
            os.rename(old, out)
            raise
    if _is_ours(old):                  # never remove what pricebench did not write
        shutil.rmtree(old, ignore_errors=True)


_RENAME_EXCHANGE, _AT_FDCWD = 2, -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _ordinary_permissions(folder: Path) -> None:
    """0755 folders, 0644 files, whatever the umask (mkdtemp makes 0700)."""
    os.chmod(folder, DIR_MODE)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), DIR_MODE)
        for name in files:
            os.chmod(os.path.join(root, name), FILE_MODE)
