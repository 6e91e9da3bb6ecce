"""Render a report folder: index (leaderboards), comparisons, a page per task and per run.

jinja2 with autoescape on: product titles, model replies and manifest values are escaped by
the template engine, and every text that comes from data sits in a `<bdi>` or `dir="auto"`
element (a right-to-left override in a title stays inside it). The two hot loops (the item
table and the scatter, 2,000 rows or points per run) are formatted in Python and escape every
text with html.escape: ten times faster than a template loop.

The output folder (`--out`) is pricebench's own and replaced as a whole (report/outdir.py).
"""
from __future__ import annotations

import datetime as dt
import html
import json
import shutil
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from harness.report.aggregate import TIMING_COLUMNS, comparisons, leaderboard_frame, rank
from harness.report.board import COMPARISON_COLUMNS, RANKED_BY, chart, leaderboard_columns
from harness.report.collect import Entry, Missing, split_unrankable
from harness.report.groups import GROUPINGS, group_board, item_groups
from harness.report.names import checked_name
from harness.report.outdir import replacing_folder
from harness.report.selection import base_selection
from harness.report.tradeoffs import tradeoffs
from harness.report.training import read_training
from harness.report.svg import BIDI_CONTROLS, mae_bars, scatter
from harness.versions import pricebench_version
from harness.runs.record import RunManifest
from harness.scoring import BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED, METRIC_BY_KEY, SCORING_VERSION

HERE = Path(__file__).resolve().parent
WORST = 10
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")    # a spreadsheet runs a cell starting so (OWASP)


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


def _pvalue(value) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def plain(value) -> str:
    """Text without bidirectional controls: for tooltips and <title>, where <bdi> cannot go."""
    return "" if value is None else str(value).translate(BIDI_CONTROLS)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters.update(money=_money, signed_money=_signed_money, pvalue=_pvalue, plain=plain)
    env.globals.update(bars=lambda c: mae_bars([(name, e.shown) for name, e in c.variants]), board_chart=chart,
                       metric=METRIC_BY_KEY, ranked_by=RANKED_BY,
                       comparison_columns=[METRIC_BY_KEY[key] for key in COMPARISON_COLUMNS])
    return env


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
    selection = {t: base_selection(by_task[t]) for t in tasks}
    answers = {t: tradeoffs(by_task[t]) for t in tasks}
    notes = {t: _task_note(by_task[t]) for t in tasks}
    cards = {t: card for t in tasks if (card := _data_card(by_task[t], t))}
    by_group = {t: _group_boards(ranked[t]) for t in tasks}     # last: its draws evict the ranking's

    env = environment()
    built = dt.datetime.now(dt.timezone.utc)
    common = {"board": board, "built": built.strftime("%Y-%m-%d %H:%M UTC"),
              "version": pricebench_version(), "scoring": SCORING_VERSION, "samples": f"{BOOTSTRAP_SAMPLES:,}",
              "seed": BOOTSTRAP_SEED, "ranked": ranked, "missing": missing_by_task, "groups": groups,
              "selection": selection, "answers": answers, "task_notes": notes,
              "unplaced": missing_by_task.get(None, []), "cards": cards,
              "columns": {t: leaderboard_columns(ranked[t]) for t in tasks}, "by_group": by_group}

    marker = {"written_by": "pricebench", "version": pricebench_version(), "board": board.name,
              "built": built.isoformat(timespec="seconds")}
    with replacing_folder(out_dir, marker) as staging:
        shutil.copytree(HERE / "assets", staging / "assets")
        (staging / "runs").mkdir()
        _write(staging / "index.html", env.get_template("index.html").render(root="", **common))
        _csv_safe(_leaderboard_csv(ranked)).to_csv(staging / "leaderboard.csv", index=False)
        _csv_safe(_timings_csv(ranked)).to_csv(staging / "timings.csv", index=False)
        _write(staging / "compare.html", env.get_template("compare.html").render(root="", **common))
        _write(staging / "selection.html", env.get_template("selection.html").render(root="", **common))
        _write(staging / "groups.html", env.get_template("groups.html").render(root="", **common))
        if len(tasks) > 1:
            (staging / "tasks").mkdir()
            page = env.get_template("task.html")
            for t in tasks:
                _write(staging / "tasks" / f"{t}.html", page.render(root="../", task=t, **common))
        page = env.get_template("run.html")
        for e in entries:
            if e.page:
                _write(staging / e.page, _run_page(page, e, common, Path(out_dir) / "runs", by_group[e.task]))
    return Path(out_dir) / "index.html"


# --- the pages ------------------------------------------------------------------------------------
def _group_boards(rows) -> dict:
    """By category and by price band: the runs with per-item data of one task, in rank order."""
    entries = [row.entry for row in rows if row.entry.has_items]
    frames = [item_groups(e.items) for e in entries]
    return {by: group_board(entries, by, frames) for by in GROUPINGS}


def _leaderboard_csv(ranked: dict) -> pd.DataFrame:
    """Every row of every task's table, for spreadsheets and notebooks."""
    rows = [row for task_rows in ranked.values() for row in task_rows]
    frame = leaderboard_frame([row.entry for row in rows])
    frame.insert(1, "rank", [row.rank for row in rows])
    frame["same_as_above"] = [row.tie_with_above for row in rows]
    return frame


def _timings_csv(ranked: dict) -> pd.DataFrame:
    """Each measured row's throughput on the machine that ran it (kept out of leaderboard.csv,
    which the predictions alone determine)."""
    rows = [{"task": r.entry.task, "label": r.entry.label, "model": r.entry.model, "run_id": r.entry.run_id,
             "items_per_s": r.entry.items_per_s} for rows in ranked.values() for r in rows
            if r.entry.items_per_s is not None]
    return pd.DataFrame.from_records(rows, columns=TIMING_COLUMNS)


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


def _data_card(entries: list[Entry], task: str) -> dict | None:
    """The counts and histogram of a curated task's data card (`pricebench curate` writes
    <data dir>/<task>/data_card.json), read from where its runs loaded the data; None if absent or
    unusable: a report never fails on a card. Only numbers and short names are kept."""
    from harness.jsonio import read_json

    def count(v):
        return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None

    for source in dict.fromkeys(e.manifest.data_source for e in entries):
        if not source or source == "hub":
            continue
        try:
            path = Path(source) / task / "data_card.json"
            if path.stat().st_size > 1_000_000:
                continue
            card = read_json(path)
            if card.get("written_by") != "pricebench curate":
                continue
            counts, hist = card["counts"], card["price_histogram"]
            steps = {k: count(counts[k]) for k in ("records", "kept", "deduplicated", "sampled", "test", "train")}
            skipped = {str(k)[:80]: count(v) for k, v in counts["skipped"].items()}
            rows = [(f"${r['low']:,.2f}–${r['high']:,.2f}", count(r["count"]), count(t["count"]))
                    for r, t in zip(hist["test"], hist["train"])]
            if None in steps.values() or None in skipped.values() or any(None in r for r in rows) or not rows:
                continue
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
            continue
        top = max(max(r[1], r[2]) for r in rows) or 1
        return {"path": str(path), "steps": steps, "skipped": skipped,
                "histogram": [(label, n_test, n_train, "#" * round(30 * n_test / top), "#" * round(30 * n_train / top))
                              for label, n_test, n_train in rows]}
    return None


def _task_note(entries: list[Entry]) -> str:
    sizes = sorted({e.shown["n"] for e in entries if e.shown["n"]})
    runs = len(entries)
    items = " / ".join(f"{n:,}" for n in sizes) or "?"
    return f"{runs} row{'s' if runs != 1 else ''} · {items} evaluation items"


def _run_page(template, e: Entry, common: dict, page_dir: Path, boards: dict) -> str:
    df = e.items
    training = read_training(e.manifest)
    order = np.argsort(-df["error"].to_numpy(), kind="stable")[:WORST]
    worst = df.iloc[order].to_dict("records")
    return template.render(
        root="../", e=e, s=e.shown, chart=scatter(df["truth"].to_numpy(), df["guess"].to_numpy(),
                                                  df["colour"].tolist(), df["id"].tolist()),
        item_rows=item_rows(df), worst=worst, facts=manifest_facts(e.manifest), training=training,
        group_tables=[(b.heading, rows) for b in boards.values() if (rows := b.rows_of(e))],
        recipe_href=training.recipe_href(page_dir) if training else None,
        manifest_json=json.dumps(e.manifest.as_json(), indent=2, ensure_ascii=False, default=str), **common)


def _shown(value) -> str:
    return "—" if value is None or value == "" else str(value)


def _pairs(values: dict | None, sep: str) -> str:
    return " · ".join(f"{k}{sep}{v}" for k, v in (values or {}).items()) or "—"


def manifest_facts(man: RunManifest) -> list[tuple[str, str, str | None]]:
    """The manifest table of a run page as (heading, text, code-or-None)."""
    ident, options = man.task_identity, man.options
    last = man.verifications[-1] if man.verifications else None
    return [
        ("Model", _shown(man.model), json.dumps(options, ensure_ascii=False, default=str) if options else None),
        ("Quantization / prompt", f"{_shown(man.quant)} / {_shown(man.prompt_style)}", None),
        *_in_context_fact(man.in_context),
        ("Task", f"{_shown(man.task)}, slice {_shown(ident.get('eval_slice'))}, {_shown(man.n_items)} "
                 f"items, data hash {_shown(ident.get('eval_hash'))}", None),
        ("Run", f"{_shown(man.run_id)} · scoring {_shown(man.scoring_version)} · created "
                f"{_shown(man.created)} · status {_shown(man.status)}", None),
        ("Versions", _pairs(man.versions, " "), None),
        ("Hardware", _pairs(man.hardware, ": "), None),
        ("Environment", _pairs(man.sessions[-1].environment if man.sessions else None, " "), None),
        *[("MIXED", f"session {_shown(m.session)} ran under another environment: " + _differs(m.differs), None)
          for m in man.mixed or []],
        *[("Last verification", f"{_shown(v.identical)}/{_shown(v.checked)} replies identical on "
                                f"re-run ({_shown(v.agreement_pct)}%), MAE on them {_shown(v.stored_mae)} "
                                f"stored vs {_shown(v.recomputed_mae)} · {_shown(v.at)}", None)
          for v in [last] if v],
    ]


def _in_context_fact(value) -> list[tuple[str, str, None]]:
    """The run's in-context examples as a manifest row (none for a zero-shot run)."""
    from harness.retrieval import from_options

    if not value:
        return []
    try:
        text = from_options(value if isinstance(value, dict) else {"": value}).describe() + \
            " (the ids each item was shown: under Worst misses, and in predictions.jsonl)"
    except ValueError:
        text = f"unreadable: {str(value)[:80]}"
    return [("In-context examples", text, None)]


def _differs(differs: dict | None) -> str:
    pairs = [(k, v if isinstance(v, list) and len(v) == 2 else ["?", "?"]) for k, v in (differs or {}).items()]
    return ", ".join(f"{k} {_shown(a)} -> {_shown(b)}" for k, (a, b) in pairs) or "—"


def _escaped(value) -> str:
    """An item's id or title, escaped once per build (every run of a task shows the same ones)."""
    return "" if value is None else _escape_once(value if isinstance(value, str) else str(value))


@lru_cache(maxsize=65_536)
def _escape_once(text: str) -> str:
    return html.escape(text)


def item_rows(df) -> Markup:
    """The item table's <tr>s; every text escaped and direction-isolated, colours from the three known names."""
    def text(value) -> str:
        return "" if value is None else html.escape(str(value))

    rows = []
    for i, title, raw, truth, guess, error, colour in zip(
            df["id"].tolist(), df["title"].tolist(), df["raw"].tolist(), df["truth"].tolist(),
            df["guess"].tolist(), df["error"].tolist(), df["colour"].tolist()):
        colour = colour if colour in ("green", "orange", "red") else "red"
        rows.append(f'<tr class="row-{colour}"><td dir="auto">{_escaped(i)}</td>'
                    f'<td dir="auto">{_escaped(title)}</td>'
                    f'<td><code dir="auto">{text(raw)}</code></td><td class="num">${truth:,.2f}</td>'
                    f'<td class="num">${guess:,.2f}</td><td class="num err">${error:,.2f}</td>'
                    f'<td class="err">{colour}</td></tr>\n')
    return Markup("".join(rows))


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
