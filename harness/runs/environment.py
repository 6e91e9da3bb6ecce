"""Where a run or a training ran: library versions and hardware, captured by one function.

Every record pricebench writes that names library versions (a run manifest, an adapter manifest,
a predictor's environment, a bundle, a report, an EEE export) takes them from `library_versions`,
so a version is looked up one way everywhere and a missing library is simply left out.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import sys

from pydantic import BaseModel, ConfigDict, Field

# Modules a run records the version of when they are loaded (a backend that did not import one did not use it).
TRACKED_PACKAGES = ("numpy", "pandas", "torch", "transformers", "peft", "bitsandbytes", "accelerate", "vllm",
                    "openai", "anthropic", "sklearn", "gensim", "lm_eval", "sentence_transformers", "faiss", "bm25s")
DIST_NAMES = {"harness": "pricebench", "sklearn": "scikit-learn", "lm_eval": "lm-eval", "faiss": "faiss-cpu"}


class Environment(BaseModel):
    """Library versions and hardware (a manifest's `versions` and `hardware`)."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    versions: dict[str, str] = Field(default_factory=dict)
    hardware: dict[str, object] = Field(default_factory=dict)


def library_versions(dists, *, python: bool = False) -> dict[str, str]:
    """{distribution: installed version} of `dists` (absent ones left out), led by Python's if asked."""
    versions = {"python": platform.python_version()} if python else {}
    for dist in dists:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def pricebench_version(default: str = "dev") -> str:
    return library_versions(["pricebench"]).get("pricebench", default)


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
