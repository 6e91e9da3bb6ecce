"""A fine-tuned run's training record (manifest info.training, harness/finetune/record.py), read
for the report as hostile data: only short texts, finite numbers and a capped curve survive.

A run without a record (evaluated before runs carried one, or not a fine-tune) has none: its
page shows no curve. Nothing here raises on a manifest's shape.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from markupsafe import Markup

from harness.report.svg import curve_chart
from harness.runs.record import RunManifest

MAX_ROWS = 2000             # rows read from a curve (a store's record holds at most 500)
MAX_SETTINGS = 60
TEXT = 160
RECIPE_FILE = re.compile(r"finetunes/[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.ya?ml")
REPO = Path(__file__).resolve().parent.parent.parent


def _text(value, limit: int = TEXT) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    text = str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:               # an integer past any float
        return None
    return value if math.isfinite(value) else None


def _count(value) -> int | None:
    value = _number(value)
    return int(value) if value is not None and 0 <= value < 1e15 else None


@dataclass
class Training:
    """What a run page and the selection view show of a fine-tune's training."""

    recipe: str | None = None
    recipe_file: str | None = None           # finetunes/<name>.yaml, checked
    base: str | None = None
    facts: list[tuple[str, str]] = field(default_factory=list)
    settings: list[tuple[str, str]] = field(default_factory=list)
    curve: list[dict] = field(default_factory=list)
    checkpoint: int | None = None
    train_s: float | None = None
    trainable: int | None = None

    def recipe_href(self, page_dir: Path | None) -> str | None:
        """A relative link from `page_dir` to the recipe in this checkout (None: not here)."""
        if not self.recipe_file or page_dir is None or not (REPO / self.recipe_file).is_file():
            return None
        return Path(os.path.relpath(REPO / self.recipe_file, Path(page_dir).resolve())).as_posix()

    def charts(self) -> list[Markup]:
        """The loss chart (train loss, validation loss) and the validation MAE chart, where they have points."""
        loss = [("train loss", "train", _points(self.curve, "loss")),
                ("validation loss", "eval", _points(self.curve, "eval_loss"))]
        mae = [("validation MAE", "eval", _points(self.curve, "eval_mae"))]
        return [curve_chart(series, y_label=label, money=money, marker=self.checkpoint)
                for series, label, money in ((loss, "loss", False), (mae, "validation MAE ($)", True))
                if any(points for _, _, points in series)]


def _points(curve: list[dict], key: str) -> list[tuple[float, float]]:
    return [(row["step"], row[key]) for row in curve if key in row]


def read_training(manifest: RunManifest) -> Training | None:
    """The training record of a run manifest (RunManifest.training), sanitised; None where it has none."""
    record = manifest.training
    if record is None:
        return None
    recipe_file = record.get("recipe_file")
    base = _text(record.get("base"))
    out = Training(recipe=_text(record.get("recipe")), base=base if base and base.startswith("hf:") else None,
                   recipe_file=recipe_file if isinstance(recipe_file, str) and RECIPE_FILE.fullmatch(recipe_file)
                   else None, curve=_curve(record.get("curve")), checkpoint=_count(record.get("checkpoint")),
                   train_s=_number(record.get("train_s")), trainable=_count(record.get("trainable_parameters")))
    out.facts = _facts(record, out)
    settings = record.get("settings")
    if isinstance(settings, dict):
        for key, value in list(settings.items())[:MAX_SETTINGS]:
            try:
                shown = json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
            except (ValueError, TypeError, RecursionError):
                shown = "?"
            out.settings.append((_text(key, 60) or "?", _text(shown, 300)))
    return out


def _facts(record: dict, t: Training) -> list[tuple[str, str]]:
    def figure(key, fmt):
        value = _number(record.get(key))
        return None if value is None else fmt(value)

    total = _count(record.get("total_parameters"))
    train, validation = _count(record.get("train_items")), _count(record.get("validation_items"))
    rows = [("Recipe", t.recipe), ("Base", t.base), ("Method", _text(record.get("method"), 40)),
            ("Objective", _text(record.get("objective"), 40)), ("Adapter", _text(record.get("adapter_id"), 64)),
            ("Evaluated", f"checkpoint {t.checkpoint}" if t.checkpoint else "final adapter"),
            ("Steps", figure("steps", lambda v: f"{v:,.0f}")),
            ("Training time", figure("train_s", lambda v: f"{v:,.1f} s")),
            ("Tokens/s", figure("tokens_per_s", lambda v: f"{v:,.1f}")),
            ("Parameters", f"{t.trainable:,} trainable of {total:,}" if t.trainable is not None and total else None),
            ("Data", f"{train:,} train pairs, {validation:,} validation"
             if train is not None and validation is not None else None)]
    return [(k, v) for k, v in rows if v]


def _curve(value) -> list[dict]:
    """Rows with a whole step >= 0 and finite figures, by step; at most MAX_ROWS read."""
    if not isinstance(value, list):
        return []
    rows = []
    for row in value[:MAX_ROWS]:
        if not isinstance(row, dict):
            continue
        step = _count(row.get("step"))
        figures = {k: v for k in ("loss", "eval_loss", "eval_mae") if (v := _number(row.get(k))) is not None}
        if step is not None and figures:
            rows.append({"step": step, **figures})
    return sorted(rows, key=lambda r: r["step"])
