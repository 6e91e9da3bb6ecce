"""Shared fixtures: the real course data (../shared/data), a throw-away run store, a small tmpfs.

Tests use the offline course data themselves: PRICEBENCH_DATA defaults to ../shared/data (set
here, at import, so test modules and the processes tests start see it too), and the Hugging Face
hub is off (HF_HUB_OFFLINE, HF_DATASETS_OFFLINE): a test that reaches for the hub fails at once
instead of hanging on retries. tests/test_hub_loading.py tests the hub code on local folders.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OFFLINE_DATA = (REPO.parent / "shared" / "data").resolve()


def _offline_env() -> None:
    if not os.environ.get("PRICEBENCH_DATA"):
        os.environ["PRICEBENCH_DATA"] = str(OFFLINE_DATA)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"


_offline_env()          # before any test module imports harness, datasets or huggingface_hub


@pytest.fixture(autouse=True, scope="session")
def offline_data() -> None:
    """Every test session runs on the offline data and with the hub off (see the module docstring)."""
    _offline_env()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ.get("PRICEBENCH_DATA", REPO.parent / "shared" / "data")).resolve()   # tests chdir
    assert (path / "amazon8" / "test.jsonl").exists(), f"course data not found at {path}: set PRICEBENCH_DATA"
    return path


@pytest.fixture(scope="session")
def baseline_fit_cache(tmp_path_factory) -> Path:
    """One fitted-baseline cache for the whole session (the tests' PRICEBENCH_CACHE where they fit
    baselines): a baseline fits once on a task however many test modules run it (word2vec: 20 s)."""
    return tmp_path_factory.mktemp("pricebench-cache")


@pytest.fixture(scope="session")
def smollm2() -> str:
    """The folder of the converted SmolLM2-135M-Instruct test model (the servers' and vLLM's tests)."""
    from harness.predictors.hf.testmodels import model_folder
    return str(model_folder("smollm2-135m-instruct"))


@pytest.fixture
def store(tmp_path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs; yields (mount point, resize(size))."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:     # a container without CAP_SYS_ADMIN: say so in the skip list
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")

    def resize(size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(disk)], check=True)

    try:
        yield disk, resize
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
