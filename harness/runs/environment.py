"""Where a run or a training ran: library versions (harness/versions.py) and hardware, captured
by one function.
"""
from __future__ import annotations

import os
import platform
import sys

from pydantic import BaseModel, ConfigDict, Field

from harness.versions import library_versions

# Modules a run records the version of when they are loaded (a backend that did not import one did not use it).
TRACKED_PACKAGES = ("numpy", "pandas", "torch", "transformers", "peft", "bitsandbytes", "accelerate", "vllm",
                    "openai", "anthropic", "sklearn", "gensim", "lm_eval", "sentence_transformers", "faiss", "bm25s")
DIST_NAMES = {"harness": "pricebench", "sklearn": "scikit-learn", "lm_eval": "lm-eval", "faiss": "faiss-cpu"}


class Environment(BaseModel):
    """Library versions and hardware (a manifest's `versions` and `hardware`)."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    versions: dict[str, str] = Field(default_factory=dict)
    hardware: dict[str, object] = Field(default_factory=dict)


def hardware() -> dict:
    info = {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count()}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def capture_environment(dists=None) -> Environment:
    """This process's environment: Python, pricebench and the tracked libraries it has loaded
    (or exactly `dists`, e.g. what a training used), and its hardware."""
    if dists is None:
        loaded = [m for m in TRACKED_PACKAGES if m in sys.modules]
        dists = [DIST_NAMES.get(m, m) for m in ("harness", *loaded)]
    return Environment(versions=library_versions(dists, python=True), hardware=hardware())
