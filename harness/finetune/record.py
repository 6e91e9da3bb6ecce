"""The training record an evaluation of a fine-tune carries in its run manifest (info.training).

Reports are built from run stores alone (stores merged from other machines by bundles hold no
adapter cache), so a `finetune:` run keeps what its run page and the base-model selection view
show: the adapter id, the recipe (name, settings, its path when it lives in the repository's
finetunes/), the base, the training figures and the curve, capped at CURVE_POINTS rows (train
rows downsampled evenly; every evaluation row kept).
"""
from __future__ import annotations

import math
from pathlib import Path

from harness.runs.manifest_io import validated
from harness.runs.record import TrainingRecord

CURVE_POINTS = 500
CURVE_KEYS = ("loss", "eval_loss", "eval_mae")
REPO = Path(__file__).resolve().parent.parent.parent


def training_record(recipe, located: dict, adapter_manifest: dict | None) -> dict:
    """The compact record (a TrainingRecord, as JSON) of the adapter `located` (FinetunePredictor.locate)
    trained by `recipe`. A checkpoint evaluated while its training goes on has no summary yet: its curve
    so far comes from the checkpoint's trainer_state.json."""
    manifest = adapter_manifest if isinstance(adapter_manifest, dict) else {}
    summary = manifest.get("training") if isinstance(manifest.get("training"), dict) else {}
    if not summary and located["checkpoint"] is not None:
        summary = {"curve": _checkpoint_curve(Path(located["weights"]))}
    data = manifest.get("data") if isinstance(manifest.get("data"), dict) else {}
    trainable = summary.get("trainable_parameters") if isinstance(summary.get("trainable_parameters"), dict) else {}
    record = {"adapter_id": located["id"], "checkpoint": located["checkpoint"], "recipe": recipe.name,
              "recipe_file": repo_path(recipe.path), "settings": recipe.identity(), "base": recipe.base,
              "method": recipe.method, "objective": recipe.objective,
              "steps": summary.get("steps"), "train_s": summary.get("train_s"),
              "tokens_per_s": summary.get("tokens_per_s"),
              "trainable_parameters": trainable.get("trainable"), "total_parameters": trainable.get("total"),
              "train_items": data.get("train"), "validation_items": data.get("validation"),
              "curve": compact_curve(curve_rows(summary))}
    typed, _ = validated(TrainingRecord, {k: v for k, v in record.items() if v is not None}, "training record")
    return typed.as_json()      # an odd figure of the adapter's manifest is left out, never written


def repo_path(path) -> str | None:
    """The recipe file relative to the repository (posix), when it lives in its finetunes/; else None."""
    if not path:
        return None
    try:
        relative = Path(path).resolve().relative_to(REPO / "finetunes")
    except (OSError, ValueError):
        return None
    return f"finetunes/{relative.as_posix()}"


def _checkpoint_curve(checkpoint: Path) -> list[dict]:
    from harness.finetune.train import curve
    from harness.jsonio import read_json

    try:
        history = read_json(checkpoint / "trainer_state.json").get("log_history")
        return curve([e for e in history if isinstance(e, dict)]) if isinstance(history, list) else []
    except (OSError, ValueError, TypeError, OverflowError, RecursionError):
        return []


def curve_rows(summary: dict) -> list[dict]:
    """Rows {step, loss?, eval_loss?, eval_mae?}: the causal-LM summary's `curve`, or a regression
    summary's `train_loss` and `validation_mae` lists merged by step."""
    if isinstance(summary.get("curve"), list):
        return [r for r in summary["curve"] if isinstance(r, dict)]
    rows: dict[int, dict] = {}
    for key, source, name in (("train_loss", "loss", "loss"), ("validation_mae", "mae", "eval_mae")):
        for entry in summary.get(key) or []:
            if isinstance(entry, dict) and isinstance(entry.get("step"), int):
                rows.setdefault(entry["step"], {"step": entry["step"]})[name] = entry.get(source)
    return [rows[s] for s in sorted(rows)]


def _finite(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(f"{value:.6g}") if math.isfinite(value) else None
    except OverflowError:
        return None


def compact_curve(rows: list[dict], limit: int = CURVE_POINTS) -> list[dict]:
    """At most `limit` rows, only the curve's keys, finite numbers: every evaluation row, and the
    train-only rows evenly spaced (first and last kept)."""
    kept = []
    for row in rows:
        step = row.get("step")
        if isinstance(step, int) and not isinstance(step, bool):
            values = {k: v for k in CURVE_KEYS if (v := _finite(row.get(k))) is not None}
            if values:
                kept.append({"step": step, **values})
    evals = [r for r in kept if "eval_loss" in r or "eval_mae" in r]
    train = [r for r in kept if not ("eval_loss" in r or "eval_mae" in r)]
    room = max(limit - len(evals), 2)
    if len(train) > room:
        train = [train[round(k * (len(train) - 1) / (room - 1))] for k in range(room)]
    out = sorted(evals[:limit] + train, key=lambda r: r["step"])
    return out[:limit]
