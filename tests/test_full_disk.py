"""A full disk (ENOSPC) on a real small tmpfs: one line, only whole lines kept, no temporary files
left, and the same command completes the run once there is room (CI runs as root: the test
mounts and unmounts the tmpfs itself)."""
from __future__ import annotations

import json
import os

import pytest

from tests._hostile import assert_one_line_error, cli

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")
RUN = ("run", "--task", "amazon8", "--model", "slowtest:disk", "-o", "delay=0", "--json")


@pytest.fixture(autouse=True)
def _slow_backend():
    from tests import _slow_predictor

    _slow_predictor.register()


def test_full_disk_mid_run_then_resume(small_disk, tmp_path, data_dir, capsys):
    disk, resize = small_disk
    store = disk / "runs"
    code, out, err = cli(capsys, "--store", store, *RUN)
    assert_one_line_error(code, err, "disk is full", "run the same command again", exit_code=1)
    (folder,) = list(store.iterdir())
    data = (folder / "predictions.jsonl").read_bytes()
    kept = data.count(b"\n")
    assert 0 < kept < 250 and data.endswith(b"\n")             # whole lines only, and some were kept
    assert all(json.loads(line)["id"] for line in data.splitlines())
    assert not (folder / "metrics.json").exists()
    assert sorted(p.name for p in folder.iterdir()) in (["manifest.json", "predictions.jsonl"],)

    resize("8m")
    code, out, err = cli(capsys, "--store", store, *RUN)
    assert code == 0 and "Traceback" not in err, err
    result = json.loads(out)
    assert result["metrics"]["n"] == 250 and not result["cached"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["sessions"][-1]["resumed_from"] == kept

    clean = tmp_path / "clean"
    assert cli(capsys, "--store", clean, *RUN)[0] == 0
    assert (folder / "predictions.jsonl").read_bytes() == (clean / folder.name / "predictions.jsonl").read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "metrics.json", "predictions.jsonl"]


def test_full_disk_before_anything_fits(small_disk, capsys):
    disk, _ = small_disk
    (disk / "filler").write_bytes(b"\0" * (64 * 1024 - 4096))
    store = disk / "runs"
    code, _, err = cli(capsys, "--store", store, *RUN)
    assert_one_line_error(code, err, "disk is full", exit_code=1)
    leftovers = [p.name for p in store.rglob("*") if p.is_file()] if store.exists() else []
    assert not [name for name in leftovers if name.endswith(".tmp")], leftovers


def test_full_disk_during_a_report_keeps_the_previous_one(small_disk, tmp_path, capsys):
    from tests._hostile import snapshot

    disk, resize = small_disk
    resize("8m")
    store, out = tmp_path / "runs", disk / "report"
    for model in ("reference:human", "reference:gpt-4o-2024-08-06"):
        assert cli(capsys, "--store", store, "run", "--task", "amazon8", "--model", model)[0] == 0
    assert cli(capsys, "--store", store, "report", "--out", out)[0] == 0
    before = snapshot(out)
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    (disk / "filler").write_bytes(b"\0" * (free - 64 * 1024))           # room for a third of a report
    code, _, err = cli(capsys, "--store", store, "report", "--out", out)
    assert_one_line_error(code, err, "disk is full", str(out), exit_code=1)
    assert snapshot(out) == before                                      # the previous report, untouched
    assert sorted(p.name for p in disk.iterdir()) == ["filler", "report"]   # no half-built sibling left
