"""Files from elsewhere are read with bounded memory, item text is checked at load, and the tests
use the offline data themselves.

A 50 MB line with no newline is refused by every JSONL reader of user files (items, raw curate
metadata, recorded runs) naming file:line, after reading about the line cap (16 MiB), never the
whole line; a lone surrogate in an item's text is a file:line:field error at load time.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from harness.curate.clean import Rules
from harness.curate.raw import read_raw
from harness.data import read_items
from harness.errors import InputError
from harness.jsonio import MAX_LINE_BYTES
from harness.predictors.reference import read_references

REPO = Path(__file__).resolve().parent.parent
HUGE = 50 * 2**20


def _huge_line_file(path: Path, before: bytes = b"") -> Path:
    with open(path, "wb") as f:
        f.write(before)
        f.write(b'{"id": "a", "title": "')
        chunk = b"x" * 2**20
        for _ in range(HUGE // len(chunk)):
            f.write(chunk)
    return path


def _peak(call) -> tuple[BaseException, int]:
    """The error `call()` raises, and the most memory Python held meanwhile."""
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as e:
            call()
        return e.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_huge_line_in_a_data_file_is_refused_with_bounded_memory(tmp_path):
    good = json.dumps({"id": "ok", "title": "t", "text": "t", "details": None, "category": "c", "price": 2.5})
    path = _huge_line_file(tmp_path / "items.jsonl", (good + "\n").encode())
    error, peak = _peak(lambda: read_items(path))
    assert str(error).startswith(f"{path}:2: ") and f"longer than {MAX_LINE_BYTES:,} bytes" in str(error)
    assert peak < 25 * 2**20, f"{peak:,} bytes held for a refused line"


def test_a_huge_line_in_raw_metadata_is_refused_or_skipped_with_bounded_memory(tmp_path):
    path = _huge_line_file(tmp_path / "meta_Appliances.jsonl", b'{"main_category": "x"}\n')
    with open(path, "ab") as f:
        f.write(b'\n{"main_category": "y"}\n')
    error, peak = _peak(lambda: read_raw([path], None, Rules()))
    assert str(error).startswith(f"{path}:2: ") and "not a product record" in str(error)
    assert peak < 25 * 2**20
    kept, tally = read_raw([path], None, Rules(), skip_bad_lines=True)    # counted, and reading goes on
    assert kept == [] and tally.lines == 3 and tally.skipped["bad line"] == 1 and tally.records == 2
    assert tally.files[0]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_huge_line_in_recorded_runs_is_refused_with_bounded_memory(tmp_path):
    path = _huge_line_file(tmp_path / "references.jsonl")
    error, peak = _peak(lambda: read_references(path))
    assert str(error).startswith(f"{path}:1: ") and "not a recorded run" in str(error)
    assert peak < 25 * 2**20


@pytest.mark.parametrize("field", ["title", "text", "details", "category", "id"])
def test_a_lone_surrogate_in_an_items_text_is_a_load_error(field, tmp_path):
    item = {"id": "a", "title": "Kettle", "text": "A kettle", "details": None, "category": "Home", "price": 20.0}
    line = json.dumps({**item, field: "PLACEHOLDER"}).replace("PLACEHOLDER", "x\\ud800y")   # valid JSON
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps({**item, "id": "first"}) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as e:
        read_items(path)
    assert str(e.value).startswith(f"{path}:2: field '{field}': ") and "\\ud800" in str(e.value)


def test_pytest_without_pricebench_data_uses_the_offline_data(tmp_path):
    """A shell with neither PRICEBENCH_DATA nor the hub switched off: the data tests still run offline."""
    env = {k: v for k, v in os.environ.items() if k not in ("PRICEBENCH_DATA", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env["PYTHONPATH"] = str(REPO)
    test = "tests/test_bounded_reads.py::test_the_default_data_is_the_offline_copy"
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail("pytest without PRICEBENCH_DATA hung (reaching for the hub?)")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout


def test_the_default_data_is_the_offline_copy():
    """Loads amazon8 with no data folder given: what a bare `pytest` sees."""
    from harness.tasks import load_task

    task = load_task("amazon8")
    assert task.is_local and len(task.eval_items()) == 250
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"


def test_a_huge_line_in_a_bundle_member_is_refused(tmp_path):
    from harness.runs.bundles.archive import read_bundle, write_bundle

    rid = "0123456789abcdef"
    bundle = tmp_path / "runs.tar.gz"
    write_bundle(bundle, [(f"runs/{rid}/manifest.json", b"{}\n"),
                          (f"runs/{rid}/predictions.jsonl", b"{}\n" + b"x" * (MAX_LINE_BYTES + 1) + b"\n")])
    with pytest.raises(InputError) as e:
        read_bundle(bundle)
    assert str(e.value).startswith(f"{bundle}: field 'archive': member 'runs/{rid}/predictions.jsonl' line 2: ")
