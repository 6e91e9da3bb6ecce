"""Render a report folder: index (leaderboards), comparisons, a page per task and per run.

jinja2 with autoescape on: product titles, model replies and manifest values are escaped by
the template engine. The two hot loops (the item table and the scatter, 2,000 rows or points
per run) are formatted in Python and escape every text with html.escape: ten times faster
than a template loop. The folder is built next to its final place and swapped in at the
end, so a failed build never leaves a half-written report.
"""
from __future__ import annotations

import datetime as dt
import html
import importlib.metadata
import json
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from harness.report.aggregate import comparisons, leaderboard_frame, rank
from harness.report.collect import Entry, Missing
from harness.report.svg import mae_bars, scatter
from harness.scoring import BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED, SCORING_VERSION

HERE = Path(__file__).resolve().parent
WORST = 10


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


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters.update(money=_money, signed_money=_signed_money, cost=_cost, rate=_rate, pvalue=_pvalue)
    env.globals["bars"] = lambda c: mae_bars([(name, e.metrics) for name, e in c.variants])
    return env


def _version() -> str:
    try:
        return importlib.metadata.version("pricebench")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


def build_report(board: BoardInfo, entries: list[Entry], out_dir, missing: list[Missing] = ()) -> Path:
    """Write the report folder `out_dir` (replacing it) and return the path of its index.html."""
    out_dir = Path(out_dir)
    tasks = list(dict.fromkeys(board.tasks + [e.task for e in entries]))
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
    common = {"board": board, "built": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "version": _version(), "scoring": SCORING_VERSION, "samples": f"{BOOTSTRAP_SAMPLES:,}",
              "seed": BOOTSTRAP_SEED, "ranked": ranked, "missing": missing_by_task, "groups": groups,
              "task_notes": notes}

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        shutil.copytree(HERE / "assets", staging / "assets")
        (staging / "runs").mkdir()
        _write(staging / "index.html", env.get_template("index.html").render(root="", **common))
        _leaderboard_csv(ranked).to_csv(staging / "leaderboard.csv", index=False)
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
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir / "index.html"


def _leaderboard_csv(ranked: dict) -> pd.DataFrame:
    """Every row of every task's table, for spreadsheets and notebooks."""
    rows = [row for task_rows in ranked.values() for row in task_rows]
    frame = leaderboard_frame([row.entry for row in rows])
    frame.insert(1, "rank", [row.rank for row in rows])
    frame["same_as_above"] = [row.tie_with_above for row in rows]
    return frame


def _task_note(entries: list[Entry]) -> str:
    sizes = sorted({e.metrics.get("n") for e in entries if e.metrics.get("n")})
    runs = len(entries)
    items = " / ".join(f"{n:,}" for n in sizes) or "?"
    return f"{runs} row{'s' if runs != 1 else ''} · {items} evaluation items"


def _run_page(template, e: Entry, common: dict) -> str:
    df = e.items
    order = np.argsort(-df["error"].to_numpy(), kind="stable")[:WORST]
    worst = df.iloc[order].to_dict("records")
    return template.render(
        root="../", e=e, chart=scatter(df["truth"].to_numpy(), df["guess"].to_numpy(), df["colour"].tolist(),
                                       df["id"].tolist()),
        item_rows=item_rows(df), worst=worst,
        manifest_json=json.dumps(e.manifest, indent=2, ensure_ascii=False, default=str), **common)


def item_rows(df) -> Markup:
    """The item table's <tr>s; every text escaped, colours restricted to the three known names."""
    def text(value) -> str:
        return "" if value is None else html.escape(str(value))

    rows = []
    for i, title, raw, truth, guess, error, colour in zip(
            df["id"].tolist(), df["title"].tolist(), df["raw"].tolist(), df["truth"].tolist(),
            df["guess"].tolist(), df["error"].tolist(), df["colour"].tolist()):
        colour = colour if colour in ("green", "orange", "red") else "red"
        rows.append(f'<tr class="row-{colour}"><td>{text(i)}</td><td>{text(title)}</td><td><code>{text(raw)}</code>'
                    f'</td><td class="num">${truth:,.2f}</td><td class="num">${guess:,.2f}</td>'
                    f'<td class="num err">${error:,.2f}</td><td class="err">{colour}</td></tr>\n')
    return Markup("".join(rows))


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
