"""Hostile matrix, classes 2 and 3: any exception is one line (no traceback), and damaged run
folders are kept where good and recomputed where not.

Each case runs the real CLI and asserts the exit code, the one-line message naming the path or
field, no traceback, and the state of the store afterwards.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._hostile import assert_one_line_error, cli, snapshot

REPO = Path(__file__).resolve().parent.parent
LAUNCHER = REPO / "tests" / "_cli_with_test_backends.py"
HUMAN = ("run", "--task", "amazon8", "--model", "reference:human")


def _run(capsys, store, *extra):
    return cli(capsys, "--store", store, *HUMAN, *extra)


@pytest.fixture
def clean(tmp_path, data_dir, capsys):
    """A finished reference run: (store, run folder, its predictions.jsonl bytes)."""
    store = tmp_path / "clean"
    code, _, _ = _run(capsys, store)
    assert code == 0
    (folder,) = [p for p in store.iterdir()]
    return store, folder, (folder / "predictions.jsonl").read_bytes()


def _copy(clean, tmp_path) -> tuple[Path, Path]:
    store = tmp_path / "damaged"
    shutil.copytree(clean[0], store)
    return store, store / clean[1].name


# --- class 2: every failure is one line ---------------------------------------------------------

def test_store_that_is_a_file(tmp_path, capsys):
    store = tmp_path / "store"
    store.write_text("mine")
    code, _, err = _run(capsys, store)
    assert_one_line_error(code, err, str(store), "--store", exit_code=2)
    assert store.read_text() == "mine"


def test_store_under_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    code, _, err = _run(capsys, tmp_path / "file" / "runs")
    assert_one_line_error(code, err, str(tmp_path / "file"), exit_code=1)


@pytest.mark.parametrize("damage", ["directory", "symlink loop", "dangling symlink"])
def test_data_file_that_is_not_a_file(damage, tmp_path, data_dir, capsys):
    root = tmp_path / "data"
    (root / "amazon8").mkdir(parents=True)
    shutil.copy(data_dir / "amazon8" / "references.jsonl", root / "amazon8")
    target = root / "amazon8" / "test.jsonl"
    if damage == "directory":
        target.mkdir()
    elif damage == "symlink loop":
        target.symlink_to(target)
    else:
        target.symlink_to(root / "nowhere.jsonl")
    code, _, err = cli(capsys, "--data-dir", root, "--store", tmp_path / "runs", *HUMAN)
    assert_one_line_error(code, err, "test.jsonl")
    assert not (tmp_path / "runs").exists()


def test_task_yaml_that_is_a_directory(tmp_path, capsys):
    (tmp_path / "task.yaml").mkdir()
    code, _, err = cli(capsys, "--store", tmp_path / "runs", "run", "--task", tmp_path / "task.yaml",
                       "--model", "reference:human")
    assert_one_line_error(code, err, "task.yaml")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_data_file(tmp_path, data_dir, capsys):
    root = tmp_path / "data"
    shutil.copytree(data_dir / "amazon8", root / "amazon8")
    (root / "amazon8" / "test.jsonl").chmod(0)
    code, _, err = cli(capsys, "--data-dir", root, "--store", tmp_path / "runs", *HUMAN)
    assert_one_line_error(code, err, "test.jsonl", "permission denied")


@pytest.mark.parametrize("error, words", [
    (MemoryError(), "out of memory"),
    (RecursionError("maximum recursion depth exceeded"), "nested too deeply"),
    (OSError(28, "No space left on device", "/some/where"), "disk is full"),
    (RuntimeError("boom\nsecond line"), "internal error: RuntimeError: boom second line"),
    (KeyboardInterrupt(), "interrupted"),
])
def test_any_exception_is_one_line(error, words, monkeypatch, tmp_path, capsys):
    import harness.runs.runner

    def explode(*args, **kwargs):
        raise error

    monkeypatch.setattr(harness.runs.runner, "load_task", explode)
    code, _, err = _run(capsys, tmp_path / "runs")
    assert_one_line_error(code, err, words, exit_code=130 if isinstance(error, KeyboardInterrupt) else 1)
    assert not (tmp_path / "runs").exists()


def test_debug_shows_the_traceback(monkeypatch, tmp_path, capsys):
    import harness.runs.runner

    monkeypatch.setattr(harness.runs.runner, "load_task", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        _run(capsys, tmp_path / "runs", "--debug")


@pytest.mark.parametrize("argv, words", [
    (["show", "abc", "--worst", "-1"], "--worst"),
    (["show", "abc", "--worst", "many"], "--worst"),
    (["show", "../other-store/a4efb779b3ce1b05"], "not a run id"),
    (["show", "/etc/passwd"], "not a run id"),
    (["show", ""], "not a run id"),
    (["compare", "a4ef", "../x"], "not a run id"),
    (["export-lm-eval", "amazon8", "out", "--max-new-tokens", "0"], "--max-new-tokens"),
    (["run", "--task", "amazon8"], "--model"),
    (["frobnicate"], "invalid choice"),
])
def test_cli_misuse(argv, words, tmp_path, capsys, clean):
    before = snapshot(clean[0])
    code, _, err = cli(capsys, "--store", clean[0], *argv)
    assert_one_line_error(code, err, words, exit_code=2)
    assert snapshot(clean[0]) == before


def _launch(store, data_dir, *argv, delay="0.01"):
    env = {**os.environ, "PRICEBENCH_DATA": str(data_dir), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, str(LAUNCHER), "--store", str(store), "run", "--task", "amazon8",
                             "--model", "slowtest:x", "-o", f"delay={delay}", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_lines(store: Path, n: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        logs = list(store.glob("*/predictions.jsonl"))
        if logs and logs[0].read_bytes().count(b"\n") >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {n} lines in {store} after {timeout} s")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_saves_and_says_how_to_resume(sig, tmp_path, data_dir):
    store = tmp_path / "runs"
    proc = _launch(store, data_dir)
    _wait_for_lines(store, 40)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    line = assert_one_line_error(proc.returncode, err, "interrupted:", "items saved",
                                 "run the same command again to resume", exit_code=130)
    saved = int(line.split("interrupted: ")[1].split()[0])
    (folder,) = list(store.iterdir())
    lines = (folder / "predictions.jsonl").read_bytes().splitlines()
    assert saved == len(lines) >= 40 and not (folder / "metrics.json").exists()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"

    again = _launch(store, data_dir, "--json", delay="0")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    result = json.loads(out)
    assert result["metrics"]["n"] == 250 and not result["cached"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["sessions"][-1]["resumed_from"] == saved


# --- class 3: damaged run folders ---------------------------------------------------------------

def _lines(folder: Path) -> list[bytes]:
    return (folder / "predictions.jsonl").read_bytes().splitlines(keepends=True)


LINE_CASES = ("garbage middle line", "line with no id", "NaN error in a line", "line for another prompt",
              "a JSON list instead of a record", "two records on one line")


def _damage(folder: Path, case: str) -> None:
    log = folder / "predictions.jsonl"
    lines = _lines(folder)
    if case == "garbage middle line":
        lines[4] = b"\x00\xffnot json at all\n"
    elif case == "line with no id":
        record = json.loads(lines[4])
        del record["id"]
        lines[4] = (json.dumps(record) + "\n").encode()
    elif case == "NaN error in a line":
        lines[4] = lines[4].replace(b'"error": ', b'"error": NaN, "x": ', 1)
    elif case == "line for another prompt":
        record = json.loads(lines[4])
        record["prompt_hash"] = "000000000000"
        lines[4] = (json.dumps(record) + "\n").encode()
    elif case == "a JSON list instead of a record":
        lines[4] = b"[1, 2, 3]\n"
    elif case == "two records on one line":
        lines[4] = lines[4].rstrip(b"\n") + b"," + lines[5]
    if case in LINE_CASES:
        log.write_bytes(b"".join(lines))
    elif case == "invalid manifest.json":
        (folder / "manifest.json").write_text("{not json")
    elif case == "manifest.json is a list":
        (folder / "manifest.json").write_text("[]")
    elif case == "missing manifest.json":
        (folder / "manifest.json").unlink()
    elif case == "invalid metrics.json":
        (folder / "metrics.json").write_text('{"n": 250, "mae": ')
    elif case == "NaN in metrics.json":
        (folder / "metrics.json").write_text('{"n": 250, "mae": NaN, "rmsle": 1, "hit_rate": 1}')
    elif case == "missing metrics.json":
        (folder / "metrics.json").unlink()
    elif case == "killed mid-write":
        log.write_bytes(b"".join(lines[:100]) + lines[100][:30])
        (folder / "metrics.json").unlink()
    elif case == "truncated to nothing":
        log.write_bytes(b"")
        (folder / "metrics.json").unlink()


DAMAGE = {  # case -> (items recomputed by the next run, words the next run says on stderr)
    "garbage middle line": (1, "predictions.jsonl:5: not a valid JSON line"),
    "line with no id": (1, "predictions.jsonl:5: no item id"),
    "NaN error in a line": (1, "predictions.jsonl:5: not a valid JSON line"),
    "line for another prompt": (1, "did not match today's items or prompts"),
    "a JSON list instead of a record": (1, "predictions.jsonl:5: not a JSON object"),
    "two records on one line": (1, "predictions.jsonl:5"),
    "invalid manifest.json": (0, "manifest.json: unreadable"),
    "manifest.json is a list": (0, "manifest.json: not a JSON object"),
    "missing manifest.json": (0, "manifest.json: missing"),
    "invalid metrics.json": (0, "metrics.json: unreadable"),
    "NaN in metrics.json": (0, "metrics.json: unreadable"),
    "missing metrics.json": (0, None),
    "killed mid-write": (150, None),
    "truncated to nothing": (250, None),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_damaged_run_keeps_good_lines_and_recomputes_the_rest(case, clean, tmp_path, capsys):
    store, folder = _copy(clean, tmp_path)
    _damage(folder, case)
    recomputed, words = DAMAGE[case]

    code, out, err = cli(capsys, "--store", store, "show", folder.name[:8])
    assert "Traceback" not in err
    if case == "truncated to nothing":
        assert_one_line_error(code, err, "no usable predictions", exit_code=2)
    elif case not in ("line for another prompt", "missing metrics.json"):   # show cannot know today's prompts
        assert code == 0 and ("DAMAGED" in out or "PARTIAL" in out), out
        if words:
            assert words in err

    code, out, err = _run(capsys, store, "--json")
    assert code == 0 and "Traceback" not in err, err
    assert json.loads(out)["metrics"]["n"] == 250
    if words:
        assert words in err and f"recomputing {recomputed}" in err
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["sessions"][-1]["items"] == recomputed
    assert (folder / "predictions.jsonl").read_bytes() == clean[2]          # byte-identical to a clean run
    assert json.loads((folder / "metrics.json").read_text()) == json.loads((clean[1] / "metrics.json").read_text())
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "metrics.json", "predictions.jsonl"]

    code, out, err = _run(capsys, store)                     # and now a plain cache hit
    assert code == 0 and "cached: nothing recomputed" in out and err == ""


def test_show_marks_a_partial_run(clean, tmp_path, capsys):
    store, folder = _copy(clean, tmp_path)
    _damage(folder, "killed mid-write")
    code, out, err = cli(capsys, "--store", store, "show", folder.name)
    assert code == 0 and "[PARTIAL: 100 of 250 items]" in out and "partial" in out, out


def test_folder_of_garbage_is_reported_not_raised(clean, tmp_path, capsys):
    store, folder = _copy(clean, tmp_path)
    for name in ("manifest.json", "metrics.json", "predictions.jsonl"):
        (folder / name).write_bytes(b"\xff\xfe garbage")
    code, _, err = cli(capsys, "--store", store, "show", folder.name)
    assert_one_line_error(code, err, "no usable predictions", exit_code=2)
    code, out, err = _run(capsys, store, "--json")
    assert code == 0 and json.loads(out)["metrics"]["n"] == 250 and "recomputing 250" in err
    assert (folder / "predictions.jsonl").read_bytes() == clean[2]


def test_foreign_entries_in_the_store_are_left_alone(clean, tmp_path, capsys):
    store, folder = _copy(clean, tmp_path)
    (store / "notes.txt").write_text("mine")
    (store / "0123456789abcdef").symlink_to(tmp_path)          # named like a run, but a link: not ours
    before = snapshot(store)
    code, _, err = cli(capsys, "--store", store, "show", "0123")
    assert_one_line_error(code, err, "no run matching '0123'", exit_code=2)
    code, _, _ = _run(capsys, store)
    assert code == 0 and snapshot(store) == before
