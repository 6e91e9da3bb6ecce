"""Shared fixtures: the real course data (../shared/data) and a throw-away run store."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ.get("PRICEBENCH_DATA", REPO.parent / "shared" / "data"))
    assert (path / "amazon8" / "test.jsonl").exists(), f"course data not found at {path}: set PRICEBENCH_DATA"
    return path


@pytest.fixture
def store(tmp_path) -> Path:
    return tmp_path / "runs"
