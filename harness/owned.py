"""Folders pricebench writes for its user (report, export eee, export lm-eval, curate), and one rule for all.

A folder is pricebench's through a marker file in it that lists, with each one's sha256, the files
pricebench wrote there. For every verb:
- an absent or empty folder becomes pricebench's; a non-empty one without a valid marker, a file
  or a symbolic link is refused, naming the path, and nothing is touched;
- pricebench writes only where nothing is, or over a file its marker lists and whose bytes are
  still the ones it wrote; anything else at a path it wants (a user's file, or one the user
  edited, or a link) is an error naming that path. Every other file in the folder is the user's
  and survives untouched;
- everything is built first in a hidden staging sibling (a failure leaves the folder as it was),
  then each file is renamed into place (readers see an old file or a new one, never half); files
  an earlier run wrote that this one does not are removed (`keep_others=False`) only while unchanged;
- errors name the user's path, never a staging name. A single output file (export runs' bundle)
  follows the same rule through `check_file`.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.cache import folder_lock
from harness.errors import InputError
from harness.jsonio import read_capped, write_json_atomic

DIR_MODE, FILE_MODE = 0o755, 0o644
MAX_MARKER_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Owner:
    """Who writes a folder: its marker's name and `written_by`, the option naming the folder in errors,
    and, for outputs from before the marker listed its files, which files an older pricebench wrote."""

    marker: str
    written_by: str
    field: str
    legacy: Callable[[Path, dict | None], set[str] | None] | None = None   # (folder, old marker) -> files


def file_sha(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(2**20):
            h.update(chunk)
    return h.hexdigest()


def _marker(folder: Path, owner: Owner) -> dict | None:
    """The folder's marker, if it is a plain file pricebench wrote for this owner."""
    path = folder / owner.marker
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        content = json.loads(read_capped(path, cap=MAX_MARKER_BYTES).decode("utf-8"))
    except (OSError, ValueError, RecursionError, InputError):
        return None
    return content if isinstance(content, dict) and content.get("written_by") == owner.written_by else None


def owned_files(folder: Path, owner: Owner) -> dict[str, str | None] | None:
    """{relative path: sha256, or None when an older marker did not record it} of the files pricebench
    wrote in `folder`, or None when the folder is not pricebench's."""
    marker = _marker(folder, owner)
    files = marker.get("files") if marker else None
    if isinstance(files, dict):
        return {k: v if isinstance(v, str) else None for k, v in files.items() if isinstance(k, str)}
    if isinstance(files, list):                         # export-eee's marker before the hashes
        return {k: None for k in files if isinstance(k, str)}
    old = owner.legacy(folder, marker) if owner.legacy else None
    return None if old is None else {k: None for k in old}


def folder_state(out: Path, owner: Owner) -> tuple[str, dict[str, str | None]]:
    """('absent' | 'empty' | 'ours', files pricebench wrote there); anything else is refused."""
    hint = f"choose another {owner.field}"
    try:
        mode = os.lstat(out).st_mode
    except FileNotFoundError:
        return "absent", {}
    except OSError as e:
        reason = "a path component is a file" if e.errno == errno.ENOTDIR else os.strerror(e.errno)
        raise InputError(f"cannot be used ({reason}): {hint}", path=out, field=owner.field) from None
    if stat.S_ISLNK(mode):
        raise InputError(f"is a symbolic link; pricebench does not write through links: give the folder itself, or "
                         f"a new one, as {owner.field}", path=out, field=owner.field)
    if not stat.S_ISDIR(mode):
        raise InputError(f"is a file, not a folder: {hint}", path=out, field=owner.field)
    try:
        with os.scandir(out) as it:
            empty = next(it, None) is None
    except OSError as e:
        raise InputError(f"cannot be read ({os.strerror(e.errno)}): {hint}", path=out, field=owner.field) from None
    if empty:
        return "empty", {}
    files = owned_files(out, owner)
    if files is None:
        raise InputError(f"is not empty and was not written by {owner.written_by} (no {owner.marker} file), so "
                         f"nothing there was touched: choose a new or empty folder for {owner.field}",
                         path=out, field=owner.field)
    return "ours", files


def _is_ours(path: Path, sha: str | None) -> bool:
    """A plain file with the bytes pricebench wrote (when they were recorded)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        return sha is None or file_sha(path) == sha
    except OSError:
        return False


def check_planned(out: Path, owner: Owner, ours: dict, planned) -> None:
    """Refuse, naming the path, any file pricebench did not write where it wants to write one, and any
    link or file where it wants a folder."""
    for rel in sorted(planned):
        target = out / rel
        for parent in reversed(Path(rel).parents[:-1]):
            where = out / parent
            if os.path.lexists(where) and (os.path.islink(where) or not os.path.isdir(where)):
                raise InputError("is a file or a symbolic link where pricebench writes a folder: not touching it "
                                 "(move it, or choose another folder)", path=where, field=owner.field)
        if os.path.lexists(target) and (rel not in ours or not _is_ours(target, ours[rel])):
            raise InputError(f"exists and was not written by {owner.written_by} (or was changed since): not "
                             f"overwriting it (move it, or choose another folder)", path=target, field=owner.field)


def check_file(path: Path, is_ours: Callable[[Path], bool], *, what: str, field: str) -> None:
    """One output file: absent, or a plain file pricebench wrote (`is_ours`); anything else is refused."""
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isfile(path)):
        raise InputError(f"is a symbolic link or a folder: not writing {what} there", path=path, field=field)
    if os.path.lexists(path) and not is_ours(path):
        raise InputError(f"exists and is not {what} pricebench wrote: not overwriting it (move it, or choose "
                         f"another file)", path=path, field=field)


def staging_prefix(out: Path) -> str:
    return f".{out.name[:48]}.pricebench-"


def make_staging(out: Path, field: str) -> Path:
    """A new, empty, hidden sibling of `out` (same file system: its files can be renamed into place);
    missing parents are made with ordinary permissions."""
    missing, parent = [], out.parent
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
        return Path(tempfile.mkdtemp(prefix=staging_prefix(out), suffix=".tmp", dir=out.parent))
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        raise InputError(f"cannot write here ({reason}): choose a writable {field}", path=where, field=field) from None


def claim(folder: Path) -> int:
    """Hold a lock on our own staging folder while this writer lives (the descriptor is returned)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        pass
    return fd


def sweep_abandoned(out: Path, current: Path, min_age_s: float = 5.0) -> None:
    """Remove staging siblings of `out` left by a writer killed outright: only our own names, only
    folders no live writer holds locked, and only ones untouched for a few seconds."""
    prefix = staging_prefix(out)
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
            continue                   # a live writer's folder
        else:
            shutil.rmtree(entry.path, ignore_errors=True)
        finally:
            os.close(fd)


def ordinary_permissions(folder: Path) -> None:
    """0755 folders, 0644 files, whatever the umask (mkdtemp makes 0700)."""
    os.chmod(folder, DIR_MODE)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), DIR_MODE)
        for name in files:
            os.chmod(os.path.join(root, name), FILE_MODE)


def staged_files(staging: Path) -> dict[str, str]:
    """{relative path: sha256} of every file built in the staging folder."""
    found = {}
    for root, _, files in os.walk(staging):
        for name in files:
            path = Path(root, name)
            found[path.relative_to(staging).as_posix()] = file_sha(path)
    return found


@contextmanager
def writing(out_dir, owner: Owner, meta: dict | None = None, *, keep_others: bool = False, state_of=None,
            planned=()):
    """Yield an empty staging folder to fill; then its files enter `out_dir` by the rule above.
    `keep_others`: files an earlier run wrote and this one does not stay (exports that add up).
    `state_of(out)`: the folder check (default `folder_state`), run again under the lock.
    `planned`: files known before the work, checked first (an error names the one in the way)."""
    out = Path(os.path.abspath(out_dir))
    state_of = state_of or (lambda path: folder_state(path, owner))
    if planned and os.path.isdir(out) and not os.path.islink(out):
        check_planned(out, owner, owned_files(out, owner) or {}, planned)
    state_of(out)                                  # refuse a foreign folder before any work
    staging, alive = make_staging(out, owner.field), None
    try:
        alive = claim(staging)
        try:
            yield staging
            ordinary_permissions(staging)
        except OSError as e:                      # name the user's path, not the staging one about to go
            raise OSError(e.errno, e.strerror, _user_path(e.filename, staging, out)) from e
        with folder_lock(out.parent, unsupported_ok=True):
            sweep_abandoned(out, staging)
            _commit(staging, out, owner, meta or {}, keep_others, *state_of(out))
    finally:
        if alive is not None:
            os.close(alive)
        shutil.rmtree(staging, ignore_errors=True)


def _user_path(name, staging: Path, out: Path) -> str:
    """A path inside the staging folder as the user will see it (in `out`); others as they are."""
    if not name:
        return str(out)
    path = Path(os.fsdecode(name))
    return str(out / path.relative_to(staging)) if path.is_relative_to(staging) else str(path)


def _commit(staging: Path, out: Path, owner: Owner, meta: dict, keep_others: bool, state: str, ours: dict) -> None:
    """Move the staged files into `out` (under the parent's lock); the marker lists what pricebench wrote."""
    planned = staged_files(staging)
    planned.pop(owner.marker, None)
    check_planned(out, owner, ours, planned)
    kept = {rel: sha for rel, sha in ours.items()
            if rel not in planned and rel != owner.marker and os.path.lexists(out / rel)}
    stale = {} if keep_others else kept
    listed = {**(kept if keep_others else {}), **planned}
    if state in ("absent", "empty"):              # a new folder: one atomic rename
        write_json_atomic(staging / owner.marker, {"written_by": owner.written_by, **meta, "files": listed})
        os.chmod(staging / owner.marker, FILE_MODE)
        os.rename(staging, out)
        return
    marker = out / owner.marker
    write_json_atomic(marker, {"written_by": owner.written_by, **meta, "files": {**ours, **listed}})
    for rel in sorted(planned):
        target = out / rel
        try:
            _make_folders(out, target.parent)
            os.replace(staging / rel, target)
        except OSError as e:                      # name the user's file, not the staging one
            raise OSError(e.errno, e.strerror, str(target)) from e
    for rel, sha in stale.items():
        if _is_ours(out / rel, sha):
            os.unlink(out / rel)
            _remove_empty_folders(out, (out / rel).parent)
    write_json_atomic(marker, {"written_by": owner.written_by, **meta, "files": listed})


def _make_folders(out: Path, folder: Path) -> None:
    missing = []
    while folder != out and not os.path.lexists(folder):
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        os.mkdir(path)
        os.chmod(path, DIR_MODE)


def _remove_empty_folders(out: Path, folder: Path) -> None:
    """Folders emptied by removing pricebench's stale files go too (a user's file keeps its folder)."""
    while folder != out and out in folder.parents:
        try:
            os.rmdir(folder)
        except OSError:
            return
        folder = folder.parent
