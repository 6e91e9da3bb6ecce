"""Render a report folder: index (leaderboards), comparisons, a page per task and per run.

jinja2 with autoescape on: product titles, model replies and manifest values are escaped by
the template engine, and every text that comes from data sits in a `<bdi>` or `dir="auto"`
element (a right-to-left override in a title stays inside it). The two hot loops (the item
table and the scatter, 2,000 rows or points per run) are formatted in Python and escape every
text with html.escape: ten times faster than a template loop.

The output folder (`--out`) is pricebench's own:
- it carries a marker file (`.pricebench-report`); a non-empty folder without it, a file or a
  symbolic link is refused, never emptied;
- the report is built in a temporary sibling, given ordinary permissions (0755 folders, 0644
  files) and swapped in atomically; the previous report is removed only after the swap (and
  only when it carries the marker). A failed build removes its temporary folder and leaves the
  previous report untouched;
- two builds into one folder both finish: the swaps are serialised by a lock on the parent
  folder (flock on the folder itself, so no lock file is left behind). Each build holds a lock
  on its temporary folder, so one killed outright (SIGKILL) leaves an unlocked folder that the
  next build removes.
"""
from __future__ import annotations

import ctypes
import datetime as dt
import errno
import fcntl
import html
import importlib.metadata
import json
import os
import shutil
import stat
import tempfile
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from harness.errors import InputError
from harness.report.aggregate import comparisons, leaderboard_frame, rank
from harness.report.collect import Entry, Missing, split_unrankable
from harness.report.names import checked_name
from harness.report.svg import BIDI_CONTROLS, mae_bars, scatter
from harness.scoring import BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED, SCORING_VERSION

HERE = Path(__file__).resolve().parent
WORST = 10
MARKER = ".pricebench-report"
DIR_MODE, FILE_MODE = 0o755, 0o644
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")    # a spreadsheet runs a cell starting so (OWASP)
# What a report written before the marker existed holds (it may be replaced, nothing else).
LEGACY = {"index.html", "compare.html", "leaderboard.csv", "assets", "runs", "tasks"}


@dataclass
class BoardInfo:
    """What the pages say about the leaderboard they show."""

    name: str
    title: str
    description: str
    tasks: list[str]


def _money(value) -> str:
    return "—" if value is None else f"${value:,.2f}"


def _signed_money(value) -> str:
    return f"{'+' if value >= 0 else '−'}${abs(value):,.2f}"


def _cost(value) -> str:
    if value is None:
        return "—"
    return "$0" if value == 0 else f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def _pvalue(value) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def _rate(value) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def _fixed(value, digits: int = 2, suffix: str = "") -> str:
    return "—" if value is None else f"{value:.{digits}f}{suffix}"


def plain(value) -> str:
    """Text without bidirectional controls: for tooltips and <title>, where <bdi> cannot go."""
    return "" if value is None else str(value).translate(BIDI_CONTROLS)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters.update(money=_money, signed_money=_signed_money, cost=_cost, rate=_rate, pvalue=_pvalue,
                       fixed=_fixed, plain=plain)
    env.globals["bars"] = lambda c: mae_bars([(name, e.shown) for name, e in c.variants])
    return env


def _version() -> str:
    try:
        return importlib.metadata.version("pricebench")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


def build_report(board: BoardInfo, entries: list[Entry], out_dir, missing: list[Missing] = ()) -> Path:
    """Write the report folder `out_dir` (replacing a previous report) and return the path of its index.html."""
    checked_name(board.name, "leaderboard name", "name")
    entries, unrankable = split_unrankable(list(entries))
    missing = list(missing) + unrankable
    tasks = list(dict.fromkeys(list(board.tasks) + [e.task for e in entries]
                               + [m.task for m in missing if m.task is not None]))
    for task in tasks:
        checked_name(task, "task name", "task")
    for e in entries:
        if e.run_id is not None:
            checked_name(e.run_id, "run id", "run")
    board = BoardInfo(board.name, board.title, board.description, tasks)
    by_task, missing_by_task = defaultdict(list), defaultdict(list)
    for e in entries:
        by_task[e.task].append(e)
    for m in missing:
        missing_by_task[m.task].append(m)
    ranked = {t: rank(by_task[t]) for t in tasks}
    groups = {t: comparisons(by_task[t]) for t in tasks}
    notes = {t: _task_note(by_task[t]) for t in tasks}

    env = environment()
    built = dt.datetime.now(dt.timezone.utc)
    common = {"board": board, "built": built.strftime("%Y-%m-%d %H:%M UTC"),
              "version": _version(), "scoring": SCORING_VERSION, "samples": f"{BOOTSTRAP_SAMPLES:,}",
              "seed": BOOTSTRAP_SEED, "ranked": ranked, "missing": missing_by_task, "groups": groups,
              "task_notes": notes, "unplaced": missing_by_task.get(None, [])}

    out = Path(os.path.abspath(out_dir))
    check_out_dir(out)                     # refuse a foreign folder before any work
    staging, alive = _staging(out), None
    try:
        alive = _claim(staging)            # a build killed outright leaves an unlocked folder: swept later
        try:
            shutil.copytree(HERE / "assets", staging / "assets")
            (staging / "runs").mkdir()
            _write(staging / "index.html", env.get_template("index.html").render(root="", **common))
            _csv_safe(_leaderboard_csv(ranked)).to_csv(staging / "leaderboard.csv", index=False)
            _write(staging / "compare.html", env.get_template("compare.html").render(root="", **common))
            if len(tasks) > 1:
                (staging / "tasks").mkdir()
                page = env.get_template("task.html")
                for t in tasks:
                    _write(staging / "tasks" / f"{t}.html", page.render(root="../", task=t, **common))
            page = env.get_template("run.html")
            for e in entries:
                if e.page:
                    _write(staging / e.page, _run_page(page, e, common))
            _write(staging / MARKER, json.dumps({"written_by": "pricebench", "version": _version(), "board": board.name,
                                                 "built": built.isoformat(timespec="seconds")}) + "\n")
            _ordinary_permissions(staging)
        except OSError as e:               # name the report, not the temporary folder about to go
            raise OSError(e.errno, e.strerror, str(out)) from e
        with _folder_lock(out.parent):
            _sweep_abandoned(out, staging)
            _swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if alive is not None:
            os.close(alive)
    return Path(out_dir) / "index.html"


# --- the output folder ----------------------------------------------------------------------------
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


@contextmanager
def _folder_lock(folder: Path):
    """Exclusive flock on a folder's own descriptor: concurrent builds into one parent take turns."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as e:           # a file system without flock: build on, unserialised
            if e.errno not in (errno.ENOLCK, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
                raise
        yield
    finally:
        os.close(fd)                   # closing the descriptor releases the lock


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


# --- the pages ------------------------------------------------------------------------------------
def _leaderboard_csv(ranked: dict) -> pd.DataFrame:
    """Every row of every task's table, for spreadsheets and notebooks."""
    rows = [row for task_rows in ranked.values() for row in task_rows]
    frame = leaderboard_frame([row.entry for row in rows])
    frame.insert(1, "rank", [row.rank for row in rows])
    frame["same_as_above"] = [row.tie_with_above for row in rows]
    return frame


def _csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula get a leading ' ; numbers stay numbers."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        out[name] = pd.Series([("'" + v) if isinstance(v, str) and v.startswith(FORMULA_START) else v
                               for v in column.tolist()], index=out.index, dtype=object)
    return out


def _task_note(entries: list[Entry]) -> str:
    sizes = sorted({e.shown["n"] for e in entries if e.shown["n"]})
    runs = len(entries)
    items = " / ".join(f"{n:,}" for n in sizes) or "?"
    return f"{runs} row{'s' if runs != 1 else ''} · {items} evaluation items"


def _run_page(template, e: Entry, common: dict) -> str:
    df = e.items
    order = np.argsort(-df["error"].to_numpy(), kind="stable")[:WORST]
    worst = df.iloc[order].to_dict("records")
    return template.render(
        root="../", e=e, s=e.shown, chart=scatter(df["truth"].to_numpy(), df["guess"].to_numpy(),
                                                  df["colour"].tolist(), df["id"].tolist()),
        item_rows=item_rows(df), worst=worst, facts=manifest_facts(e.manifest),
        manifest_json=json.dumps(e.manifest, indent=2, ensure_ascii=False, default=str), **common)


def _mapping(value) -> dict:
    return value if isinstance(value, dict) else {}


def _shown(value) -> str:
    return "—" if value is None or value == "" else str(value)


def manifest_facts(man: dict) -> list[tuple[str, str, str | None]]:
    """The manifest table of a run page as (heading, text, code-or-None): any JSON shape renders."""
    ident = _mapping(_mapping(man.get("identity")).get("task"))
    options = man.get("options")
    return [
        ("Model", _shown(man.get("model")), json.dumps(options, ensure_ascii=False, default=str) if options else None),
        ("Quantization / prompt", f"{_shown(man.get('quant'))} / {_shown(man.get('prompt_style'))}", None),
        ("Task", f"{_shown(man.get('task'))}, slice {_shown(ident.get('eval_slice'))}, {_shown(man.get('n_items'))} "
                 f"items, data hash {_shown(ident.get('eval_hash'))}", None),
        ("Run", f"{_shown(man.get('run_id'))} · scoring {_shown(man.get('scoring_version'))} · created "
                f"{_shown(man.get('created'))} · status {_shown(man.get('status'))}", None),
        ("Versions", " · ".join(f"{k} {v}" for k, v in _mapping(man.get("versions")).items()) or "—", None),
        ("Hardware", " · ".join(f"{k}: {v}" for k, v in _mapping(man.get("hardware")).items()) or "—", None),
    ]


def item_rows(df) -> Markup:
    """The item table's <tr>s; every text escaped and direction-isolated, colours from the three known names."""
    def text(value) -> str:
        return "" if value is None else html.escape(str(value))

    rows = []
    for i, title, raw, truth, guess, error, colour in zip(
            df["id"].tolist(), df["title"].tolist(), df["raw"].tolist(), df["truth"].tolist(),
            df["guess"].tolist(), df["error"].tolist(), df["colour"].tolist()):
        colour = colour if colour in ("green", "orange", "red") else "red"
        rows.append(f'<tr class="row-{colour}"><td dir="auto">{text(i)}</td><td dir="auto">{text(title)}</td>'
                    f'<td><code dir="auto">{text(raw)}</code></td><td class="num">${truth:,.2f}</td>'
                    f'<td class="num">${guess:,.2f}</td><td class="num err">${error:,.2f}</td>'
                    f'<td class="err">{colour}</td></tr>\n')
    return Markup("".join(rows))


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
