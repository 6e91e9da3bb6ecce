"""The errors pricebench explains to its user, and how any failure becomes one line.

InputError: bad user input (a data file, a task or leaderboard spec, a CLI option); its
message names the file, line and field. Interrupted: Ctrl-C during a run, with what was kept.
`describe` turns every other exception (OS errors, full disk, damaged files, MemoryError,
RecursionError) into one line naming the path and what to do: no user sees a traceback
unless they ask for it with --debug.
"""
from __future__ import annotations

import errno
import signal
import threading
from contextlib import contextmanager


class InputError(ValueError):
    """Bad user input: a data file, a task or leaderboard spec, or a CLI option."""

    def __init__(self, message: str, *, path=None, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field, self.reason = path, line, field, message
        where = ""
        if path is not None:
            where = str(path)
            if line is not None:
                where += f":{line}"
            where += ": "
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}{what}{message}")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during a run: the items already predicted are saved."""

    def __init__(self, saved: int, path=None):
        self.saved, self.path = saved, path
        super().__init__(f"interrupted: {saved} items saved; run the same command again to resume")


@contextmanager
def interrupts_deferred():
    """Hold Ctrl-C and SIGTERM until the block ends, then deliver them as usual.

    The runner keeps "what is on disk" and "what is still buffered" in step inside such a block:
    an interrupt landing between a write and its bookkeeping would count an item twice or not
    at all. Signals are handled in the main thread only, so elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: held.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if held:
            handler = previous[held[0]]
            if callable(handler):
                handler(held[0], None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(held[0])


EXIT_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED = 2, 1, 130

_OS_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space, then run the same command again (finished items are kept)",
    errno.EDQUOT: "the disk quota is exceeded: free some space, then run the same command again",
    errno.EROFS: "the file system is read-only: choose a writable --store / --out",
    errno.EACCES: "permission denied: check the path's owner and mode",
    errno.EPERM: "operation not permitted: check the path's owner and mode",
    errno.EISDIR: "is a directory, where a file was expected",
    errno.ENOTDIR: "a path component is a file, where a folder was expected",
    errno.ELOOP: "too many levels of symbolic links (a symlink loop?)",
    errno.ENOENT: "no such file or folder",
    errno.EEXIST: "already exists",
    errno.ENAMETOOLONG: "the file name is too long",
}


def describe(error: BaseException) -> tuple[str, int]:
    """(one line for the user, exit code) for any exception."""
    if isinstance(error, InputError):
        return f"error: {error}", EXIT_INPUT
    if isinstance(error, Interrupted):
        return str(error), EXIT_INTERRUPTED
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (nothing was half-written; run the same command again to resume)", EXIT_INTERRUPTED
    if isinstance(error, OSError):
        path = error.filename if error.filename is not None else ""
        other = f" -> {error.filename2}" if getattr(error, "filename2", None) else ""
        advice = _OS_ADVICE.get(error.errno, error.strerror or str(error))
        where = f"{path}{other}: " if path else ""
        return f"error: {where}{advice}", EXIT_FAILURE
    if isinstance(error, MemoryError):
        return "error: out of memory (a very large or self-referencing input?); nothing was half-written", EXIT_FAILURE
    if isinstance(error, RecursionError):
        return "error: input nested too deeply (a self-referencing file?); nothing was half-written", EXIT_FAILURE
    text = " ".join(str(error).split())[:300]
    return (f"internal error: {type(error).__name__}: {text} (run again with --debug for the traceback, "
            f"and please report it)"), EXIT_FAILURE
