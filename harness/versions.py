"""Installed library versions, looked up one way everywhere: a run manifest and its environment
(runs/environment.py), an adapter manifest, a predictor's identity, a bundle, a report and an EEE
export all ask `library_versions`, and a missing library is simply left out. Imports nothing of
pricebench, so a predictor can ask without depending on runs/."""
from __future__ import annotations

import importlib.metadata
import platform


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
