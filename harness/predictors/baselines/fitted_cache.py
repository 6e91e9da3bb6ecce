"""Fitted models on disk, keyed by (train-data hash, model spec): fit once, load ever after.

A baseline's fit is deterministic given its training data and recipe, so the pair names the
file. The file is written to a temporary name and renamed, so a killed fit never leaves a
half-written model that a later run would load.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import joblib

from harness.cache import cache_root


def cache_dir() -> Path:
    """$PRICEBENCH_CACHE/fitted, else ~/.cache/pricebench/fitted."""
    return cache_root() / "fitted"


def cache_key(key: dict) -> str:
    canonical = json.dumps(key, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def cache_path(key: dict, name: str = "model") -> Path:
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)
    return cache_dir() / f"{safe}-{cache_key(key)}.joblib"


def load_or_fit(key: dict, fit: Callable[[], object], name: str = "model") -> tuple[object, bool]:
    """(model, loaded): the cached model if the key was fitted before, else fit() and store it."""
    path = cache_path(key, name)
    if path.exists():
        try:
            return joblib.load(path), True
        except Exception:           # unreadable (older library, torn copy): refit and overwrite
            path.unlink(missing_ok=True)
    model = fit()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        joblib.dump(model, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return model, False
