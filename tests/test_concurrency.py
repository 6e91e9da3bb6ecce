"""Class 4 of the hostile matrix: parallel processes on one store finish every run exactly once,
byte-identical to a serial run, with no leftovers (the run folder's flock serialises writers)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests._suite_support import small_task, write_leaderboard

REPO = Path(__file__).resolve().parent.parent
LAUNCHER = REPO / "tests" / "_cli_with_test_backends.py"


def _start(data_dir, *argv):
    env = {**os.environ, "PRICEBENCH_DATA": str(data_dir)}
    return subprocess.Popen([sys.executable, str(LAUNCHER), *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _finish(procs) -> list[tuple[int, str, str]]:
    outputs = [p.communicate(timeout=300) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]


def _files(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}


def _assert_same_runs(store: Path, serial: Path) -> None:
    """Same run folders, each with exactly its three files, predictions and metrics byte-identical."""
    ours, theirs = _files(store), _files(serial)
    assert sorted(ours) == sorted(theirs)
    assert all(name.split("/")[-1] in ("manifest.json", "predictions.jsonl", "metrics.json") for name in ours)
    for name, content in ours.items():
        if not name.endswith("manifest.json"):
            assert content == theirs[name], name
        else:
            manifest = json.loads(content)
            assert manifest["status"] == "complete" and len(manifest["sessions"]) == 1, name
            assert manifest["sessions"][0]["resumed_from"] == 0


def test_parallel_runs_of_one_spec_compute_it_once(data_dir, tmp_path):
    store, serial = tmp_path / "store", tmp_path / "serial"
    args = ("run", "--task", "amazon8", "--model", "slowtest:race", "-o", "delay=0.004", "--json")
    outcomes = _finish([_start(data_dir, "--store", store, *args) for _ in range(4)])
    assert [code for code, _, _ in outcomes] == [0, 0, 0, 0], [err for _, _, err in outcomes]
    assert all("Traceback" not in err for _, _, err in outcomes)
    results = [json.loads(out) for _, out, _ in outcomes]
    assert len({r["run_id"] for r in results}) == 1
    assert sum(not r["cached"] for r in results) == 1            # one computed it, the others found it done

    ((code, _, err),) = _finish([_start(data_dir, "--store", serial, *args)])
    assert code == 0, err
    _assert_same_runs(store, serial)


def test_two_suites_on_one_store(data_dir, tmp_path):
    task = small_task(tmp_path, data_dir, n=40)
    board = write_leaderboard(tmp_path / "board.yaml", f"""
name: race
tasks: [{task}]
models:
  - model: slowtest:a
    options: {{delay: 0.01}}
  - model: slowtest:b
    options: {{delay: 0.01}}
  - testonly:noisy
  - testonly:other
""")
    store, serial = tmp_path / "store", tmp_path / "serial"
    args = ("--store", store, "suite", board, "--no-report")
    outcomes = _finish([_start(data_dir, *args), _start(data_dir, *args)])
    assert [code for code, _, _ in outcomes] == [0, 0], [err for _, _, err in outcomes]
    assert all("4 jobs done, 0 failed" in out for _, out, _ in outcomes)
    computed = [int(out.split("failed, ")[1].split()[0]) for _, out, _ in outcomes]
    assert sum(computed) == 4 * 40                               # every item predicted exactly once

    ((code, _, err),) = _finish([_start(data_dir, "--store", serial, "suite", board, "--no-report")])
    assert code == 0, err
    _assert_same_runs(store, serial)
