"""Hostile cases for `pricebench report`: the output folder, damaged run folders, output hygiene.

Every case goes through the real CLI where it can (tests/_hostile.py): a refusal is one
`pricebench: ` line naming the path or field, with no traceback, and leaves the output folder
byte for byte as it was; a success is one complete report (marker, pages, leaderboard.csv)
with nothing left behind in the parent folder.
"""
from __future__ import annotations

import concurrent.futures
import csv
import fcntl
import html
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

import harness
import harness.report.build as build
import harness.owned as owned
import harness.report.outdir as outdir
from harness.errors import InputError
from harness.predictors import register_backend
from harness.predictors.base import Predictor, Reply
from harness.report import report_for_store
from harness.report.aggregate import rank
from harness.report.build import BoardInfo, build_report
from harness.report.collect import Entry
from tests._hostile import assert_one_line_error, cli, snapshot
from tests._suite_support import small_task

REPO = Path(__file__).resolve().parent.parent
MARKER = ".pricebench-report"
RLO = "\u202e"
LABELS = {"eq": '=HYPERLINK("http://evil.example/","click me")', "plus": "+1+1", "minus": "-2+3", "at": "@SUM(A1:A2)",
          "tab": "\t=1+1", "rlo": f"Model {RLO}gnp.exe"}


class LabelPredictor(Predictor):
    """A model whose label is hostile text; its replies carry a right-to-left override. No options."""

    default_prompt = "base"
    batch_size = 8
    kind = "model"

    def label(self) -> str:
        return LABELS[self.spec.target]

    def predict_batch(self, requests):
        factor = 1.0 + 0.07 * list(LABELS).index(self.spec.target)
        return [Reply(raw=f"Price is ${r.item.price * factor:,.2f} {RLO}txt.exe") for r in requests]


class FailingPredictor(Predictor):
    """Every request fails (as an API that is down): the run finishes with failed = n. No options."""

    default_prompt = "base"
    batch_size = 8
    kind = "model"

    def predict_batch(self, requests):
        return [Reply(raw=None, error="HTTP 503: service unavailable") for _ in requests]


@pytest.fixture(autouse=True)
def _backends():
    register_backend("hrlabel", LabelPredictor)
    register_backend("hrfail", FailingPredictor)


def report(capsys, store, out, *more):
    return cli(capsys, "--store", store, "report", "--out", out, *more)


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def assert_complete(out: Path, runs: int) -> None:
    """One complete report: marker, pages, a run page per ranked run, the CSV."""
    assert json.loads((out / MARKER).read_text(encoding="utf-8"))["written_by"] == "pricebench"
    for name in ("index.html", "compare.html", "selection.html", "leaderboard.csv", "assets/report.js", "assets/style.css"):
        assert (out / name).is_file(), name
    assert (out / "index.html").read_text(encoding="utf-8").rstrip().endswith("</html>")
    assert len(list((out / "runs").glob("*.html"))) == runs
    assert len(pd.read_csv(out / "leaderboard.csv")) == runs


@pytest.fixture(scope="module")
def base_store(tmp_path_factory, data_dir) -> Path:
    """Two recorded runs on amazon8 (human, GPT-4o): fast, real data."""
    store = tmp_path_factory.mktemp("hostile-report") / "runs"
    for model in ("reference:human", "reference:gpt-4o-2024-08-06"):
        harness.run("amazon8", model, data_dir=data_dir, store=store, progress=False)
    return store


@pytest.fixture
def store(base_store, tmp_path) -> Path:
    copy = tmp_path / "runs"
    shutil.copytree(base_store, copy)
    return copy


def _human(store: Path) -> Path:
    return next(p for p in store.iterdir() if "reference:human" in (p / "manifest.json").read_text("utf-8"))


# --- 1. the output folder ---------------------------------------------------------------------------
def _foreign(out: Path) -> Path:
    out.mkdir()
    (out / "thesis.tex").write_text("three years of work\n", encoding="utf-8")
    (out / "data").mkdir()
    (out / "data" / "results.bin").write_bytes(bytes(range(256)))
    return out


def _file(out: Path) -> Path:
    out.write_text("not a folder\n", encoding="utf-8")
    return out


def _symlink_to_report(out: Path) -> Path:
    real = out.parent / "real"
    real.mkdir()
    (real / "index.html").write_text("mine\n", encoding="utf-8")
    out.symlink_to(real, target_is_directory=True)
    return out.parent


def _dangling_symlink(out: Path) -> Path:
    out.symlink_to(out.parent / "nowhere")
    return out.parent


def _fake_marker(out: Path) -> Path:
    _foreign(out)
    (out / MARKER).write_text("I am not pricebench\n", encoding="utf-8")
    return out


def _legacy_plus_foreign(out: Path) -> Path:
    out.mkdir()
    shutil.copytree(REPO / "harness" / "report" / "assets", out / "assets")
    (out / "index.html").write_text("old report\n", encoding="utf-8")
    (out / "notes.txt").write_text("my notes\n", encoding="utf-8")
    return out


REFUSALS = {
    "non-empty foreign folder": (_foreign, ["not empty", "was not written by pricebench"]),
    "a file": (_file, ["is a file"]),
    "a symlink to a folder": (_symlink_to_report, ["symbolic link"]),
    "a dangling symlink": (_dangling_symlink, ["symbolic link"]),
    "a marker file pricebench did not write": (_fake_marker, ["not empty"]),
    "an old report holding a foreign file": (_legacy_plus_foreign, ["not empty"]),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_out_that_is_not_ours_is_refused_and_untouched(case, store, tmp_path, capsys):
    make, needles = REFUSALS[case]
    out = tmp_path / "place" / "out"
    out.parent.mkdir()
    watched = make(out)
    before = snapshot(watched)
    code, _, err = report(capsys, store, out)
    assert_one_line_error(code, err, str(out), "--out", *needles, exit_code=2)
    assert snapshot(watched) == before
    assert os.path.lexists(out)
    assert hidden(out.parent) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0555 folder anyway")
def test_out_inside_a_read_only_folder(store, tmp_path, capsys):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        code, _, err = report(capsys, store, parent / "out")
        assert_one_line_error(code, err, str(parent), "--out", "choose a writable --out")
        assert list(parent.iterdir()) == []
    finally:
        parent.chmod(0o755)


def test_out_where_the_folder_refuses_writes(store, tmp_path, capsys, monkeypatch):
    """The read-only case for any user (root writes anyway): the folder refuses to make the staging folder."""
    parent = tmp_path / "ro"
    parent.mkdir()

    def refused(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", str(Path(dir) / ".out.tmp"))

    monkeypatch.setattr(owned.tempfile, "mkdtemp", refused)
    code, _, err = report(capsys, store, parent / "out")
    line = assert_one_line_error(code, err, str(parent), "--out", "Permission denied", exit_code=2)
    assert ".tmp" not in line
    assert list(parent.iterdir()) == []


def test_out_below_a_file_is_refused(store, tmp_path, capsys):
    (tmp_path / "plain.txt").write_text("x\n", encoding="utf-8")
    code, _, err = report(capsys, store, tmp_path / "plain.txt" / "out")
    assert_one_line_error(code, err, str(tmp_path / "plain.txt"), "--out", exit_code=2)
    assert (tmp_path / "plain.txt").read_text(encoding="utf-8") == "x\n"


def test_a_suite_refuses_a_foreign_out_before_running_anything(data_dir, tmp_path, capsys):
    board = tmp_path / "one.yaml"
    board.write_text("name: one\ntasks: [amazon8]\nreferences:\n  amazon8: [human]\n", encoding="utf-8")
    out = _foreign(tmp_path / "out")
    before = snapshot(out)
    store = tmp_path / "fresh-store"
    code, _, err = cli(capsys, "--data-dir", data_dir, "--store", store, "suite", board, "--out", out)
    assert_one_line_error(code, err, str(out), "--out", "not empty", exit_code=2)
    assert snapshot(out) == before and not store.exists()


def test_report_root_is_refused(store, capsys):
    code, _, err = report(capsys, store, "/")
    assert_one_line_error(code, err, "--out", exit_code=2)


@pytest.mark.parametrize("start", ["absent", "empty folder", "own report", "report without marker (older version)"])
def test_out_that_is_ours_or_empty_is_replaced(start, store, tmp_path, capsys):
    out = tmp_path / "out"
    if start == "empty folder":
        out.mkdir()
    elif start != "absent":
        assert report(capsys, store, out)[0] == 0
        (out / "runs" / "stale.html").write_text("from an older build\n", encoding="utf-8")
        marker = json.loads((out / MARKER).read_text(encoding="utf-8"))     # as an older build listed it
        marker["files"]["runs/stale.html"] = owned.file_sha(out / "runs" / "stale.html")
        (out / MARKER).write_text(json.dumps(marker), encoding="utf-8")
        if start.startswith("report without marker"):
            (out / MARKER).unlink()
            (out / "timings.csv").unlink()          # reports from before the marker had none
            (out / "selection.html").unlink()       # nor a base-model selection page
            (out / "groups.html").unlink()          # nor a by-category page
    code, stdout, err = report(capsys, store, out)
    assert code == 0, err
    assert f"report: {out / 'index.html'}" in stdout
    assert_complete(out, runs=2)
    assert not (out / "runs" / "stale.html").exists()
    assert hidden(tmp_path) == []


def test_a_full_disk_mid_build_leaves_the_previous_report_and_no_leftovers(store, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert report(capsys, store, out)[0] == 0
    before = snapshot(out)
    writes = []
    real_write = build._write

    def full_disk(path, text):
        writes.append(path)
        if len(writes) == 3:
            raise OSError(28, "No space left on device", str(path))
        real_write(path, text)

    monkeypatch.setattr(build, "_write", full_disk)
    code, _, err = report(capsys, store, out)
    assert_one_line_error(code, err, str(out), "disk is full", exit_code=1)
    assert snapshot(out) == before
    assert hidden(tmp_path) == []


def test_a_build_killed_outright_is_swept_by_the_next_one(store, tmp_path, capsys):
    out = tmp_path / "out"
    dead = tmp_path / ".out.pricebench-k1ll3d.tmp"       # as a SIGKILLed build leaves it: unlocked
    live = tmp_path / ".out.pricebench-l1v3.tmp"         # another build still at work: locked
    for folder in (dead, live):
        (folder / "runs").mkdir(parents=True)
        (folder / "index.html").write_text("half\n", encoding="utf-8")
        os.utime(folder, (time.time() - 60, time.time() - 60))
    foreign = tmp_path / ".out.notes"                    # not our name: never touched
    foreign.mkdir()
    fd = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        code, _, err = report(capsys, store, out)
    finally:
        os.close(fd)
    assert code == 0, err
    assert_complete(out, runs=2)
    assert hidden(tmp_path) == [".out.notes", live.name]


def test_report_files_get_ordinary_permissions_whatever_the_umask(store, tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / "out"
    old = os.umask(0o077)
    try:
        code, _, err = report(capsys, store, out)
    finally:
        os.umask(old)
    assert code == 0, err
    for folder in (tmp_path / "new", tmp_path / "new" / "deeper"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755, folder
    paths = [out, *out.rglob("*")]
    assert len(paths) > 8
    for path in paths:
        want = 0o755 if path.is_dir() else 0o644
        assert stat.S_IMODE(path.stat().st_mode) == want, (path, oct(path.stat().st_mode))


def test_two_builds_into_one_out_both_finish_threads(store, tmp_path, monkeypatch):
    """Widen the window between 'what is at --out' and the rename: only the lock keeps them apart."""
    out = tmp_path / "out"
    real_state = outdir._out_state

    def slow_state(path):
        state = real_state(path)
        time.sleep(0.3)
        return state

    monkeypatch.setattr(outdir, "_out_state", slow_state)
    barrier = threading.Barrier(2)

    def one_build():
        barrier.wait()
        return report_for_store(store=store, out_dir=out)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = [f.result() for f in [pool.submit(one_build) for _ in range(2)]]
    assert results == [out / "index.html"] * 2
    assert_complete(out, runs=2)
    assert hidden(tmp_path) == []


def test_two_builds_into_one_out_both_finish_processes(store, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    argv = [sys.executable, "-m", "harness.cli", "--store", str(store), "report", "--out", str(out)]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr
    assert_complete(out, runs=2)
    assert hidden(tmp_path) == []


# --- 2. names that become file names ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../x", "a/b", "", ".hidden", "a\\b", "x\ny"])
def test_names_that_would_leave_the_report_folder_are_refused(name, tmp_path, capsys, store):
    out = tmp_path / "out"
    code, _, err = report(capsys, store, out, "--name", name)
    assert_one_line_error(code, err, "--name", exit_code=2)
    board = BoardInfo("ok", "t", "", [name])
    with pytest.raises(InputError, match="task name"):
        build_report(board, [], out)
    with pytest.raises(InputError, match="leaderboard name"):
        build_report(BoardInfo(name, "t", "", []), [], out)
    assert not out.exists() and hidden(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


# --- 3. damaged run folders -----------------------------------------------------------------------------
def _garbage_line(folder: Path):
    with open(folder / "predictions.jsonl", "a", encoding="utf-8") as f:
        f.write("this is not json\n")


def _invalid_manifest(folder: Path):
    (folder / "manifest.json").write_text("{not json", encoding="utf-8")


def _metrics(value: str):
    def damage(folder: Path):
        text = (folder / "metrics.json").read_text(encoding="utf-8")
        metrics = json.loads(text)
        (folder / "metrics.json").write_text(text.replace(f'"mae": {json.dumps(metrics["mae"])}', f'"mae": {value}'),
                                             encoding="utf-8")
    return damage


def _empty(folder: Path):
    shutil.rmtree(folder)
    folder.mkdir()


def _only_garbage(folder: Path):
    for name in ("manifest.json", "predictions.jsonl", "metrics.json"):
        (folder / name).write_bytes(b"\x00\xff\xfe garbage \x89PNG\r\n\x1a\n")


def _escaping_task(folder: Path):
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["task"] = "../../escaped"
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def _odd_manifest_types(folder: Path):
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest.update(label=["not", "a", "name"], kind=7, timings="fast", versions=["x"], hardware=None,
                    identity="?", info=[1], options={"k": [1, 2]}, cost_usd="lots")
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def _odd_metrics_types(folder: Path):
    """Figures its predictions contradict: recomputed, the run is marked (harness/runs/recheck.py), never shown."""
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    metrics.update(green="many", parse_failure_rate=None, mae_ci_low=None)
    (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")


def _killed_half_way(folder: Path):
    lines = (folder / "predictions.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (folder / "predictions.jsonl").write_text("".join(lines[:100]) + lines[100][:30], encoding="utf-8")
    (folder / "metrics.json").unlink()


DAMAGE = {   # case -> (damage, state shown, text the row's detail names, still ranked)
    "garbage line": (_garbage_line, "DAMAGED", "predictions.jsonl:251", False),
    "invalid manifest.json": (_invalid_manifest, "DAMAGED", "manifest.json: unreadable", False),
    "metrics.json with NaN": (_metrics("NaN"), "DAMAGED", "metrics.json", False),
    "metrics.json with Infinity": (_metrics("Infinity"), "DAMAGED", "metrics.json", False),
    "killed half-way (partial, torn last line)": (_killed_half_way, "PARTIAL", "unfinished: 100 of 250 items", False),
    "empty folder": (_empty, "EMPTY", "holds no run", False),
    "only garbage": (_only_garbage, "DAMAGED", "manifest.json", False),
    "task name escaping the report": (_escaping_task, "DAMAGED", "field 'task'", False),
    "odd manifest types": (_odd_manifest_types, None, None, True),
    "odd metrics types": (_odd_metrics_types, "DAMAGED", "metrics.json: field 'mae_ci_low': says None, but its "
                          "predictions give", False),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_run_folder_is_marked_and_the_rest_is_reported(case, store, tmp_path, capsys):
    damage, shown, detail, ranked = DAMAGE[case]
    folder = store / "dead00000000beef"
    shutil.copytree(_human(store), folder)
    damage(folder)
    before = snapshot(store)
    out = tmp_path / "out"
    code, _, err = report(capsys, store, out)
    assert code == 0, err
    assert "Traceback" not in err
    assert snapshot(store) == before                 # a report never modifies the store
    assert_complete(out, runs=3 if ranked else 2)
    index = (out / "index.html").read_text(encoding="utf-8")
    table = pd.read_csv(out / "leaderboard.csv", dtype={"run_id": str})
    if ranked:
        assert "dead00000000beef" in set(table["run_id"])
        assert (out / "runs" / "dead00000000beef.html").is_file()
        return
    assert "dead00000000beef" not in set(table["run_id"])
    assert not (out / "runs" / "dead00000000beef.html").exists()
    row = html.unescape(next(li for li in index.split("<li ") if "dead00000000beef" in li))
    assert f">{shown}</span>" in row and detail in row, row
    assert table["mae"].notna().all() and list(table["rank"]) == [1, 2]
    assert not (tmp_path.parent / "escaped").exists() and not (out.parent / "escaped.html").exists()


def test_a_leaderboard_with_a_damaged_job_marks_it(data_dir, store, tmp_path, capsys):
    board = tmp_path / "two.yaml"
    board.write_text("name: two\ntasks: [amazon8]\nreferences:\n  amazon8: [human, gpt-4o-2024-08-06]\n",
                     encoding="utf-8")
    _garbage_line(_human(store))
    out = tmp_path / "out"
    code, _, err = cli(capsys, "--data-dir", data_dir, "--store", store, "report", board, "--out", out)
    assert code == 0, err
    assert_complete(out, runs=1)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert ">DAMAGED</span>" in index and "predictions.jsonl:251" in index


# --- 4. a run whose requests all failed -----------------------------------------------------------------
def test_a_run_whose_requests_all_failed_is_shown_failed_not_ranked(data_dir, store, tmp_path, capsys):
    task = small_task(tmp_path, data_dir, n=8, name="down")
    failed = harness.run(task, "hrfail:api", data_dir=data_dir, store=store, progress=False)
    assert failed.failed_all and failed.metrics["mae"] > 0          # an MAE exists: it must not be ranked
    ok = harness.run(task, "hrlabel:plus", data_dir=data_dir, store=store, progress=False)

    out = tmp_path / "store-report"
    code, _, err = report(capsys, store, out)
    assert code == 0, err
    table = pd.read_csv(out / "leaderboard.csv", dtype={"run_id": str})
    assert failed.run_id not in set(table["run_id"]) and ok.run_id in set(table["run_id"])
    index = (out / "index.html").read_text(encoding="utf-8")
    assert f'data-run="{failed.run_id}"' not in index
    row = next(li for li in index.split("<li ") if failed.run_id in li)
    assert ">FAILED</span>" in row and "all 8 requests failed" in row and "HTTP 503" in row

    board = tmp_path / "down-board.yaml"
    board.write_text(f"name: down\ntasks: [{task}]\nmodels: [hrfail:api, hrlabel:plus]\n", encoding="utf-8")
    out = tmp_path / "board-report"
    code, _, err = cli(capsys, "--data-dir", data_dir, "--store", store, "report", board, "--out", out)
    assert code == 0, err
    index = (out / "index.html").read_text(encoding="utf-8")
    assert f'data-run="{failed.run_id}"' not in index and f'data-run="{ok.run_id}"' in index
    assert ">FAILED</span>" in index and "hrfail:api" in index
    assert len(pd.read_csv(out / "leaderboard.csv")) == 1


def test_a_non_finite_mae_is_never_ranked(tmp_path):
    def entry(label, mae):
        return Entry(task="amazon8", label=label, model=f"x:{label}", kind="model", provenance="published",
                     metrics={"n": 250, "mae": mae, "rmsle": 1.0, "hit_rate": 30.0})

    entries = [entry("good", 80.0), entry("bad-1", float("nan")), entry("bad-2", float("inf")),
               entry("bad-3", -float("inf"))]
    assert [row.entry.label for row in rank(entries)] == ["good"]
    index = build_report(BoardInfo("nf", "t", "", ["amazon8"]), entries, tmp_path / "out")
    html = index.read_text(encoding="utf-8")
    assert html.count(">DAMAGED</span>") == 3
    assert not any(word in html.lower() for word in ("$nan", "$inf", "$-inf", ">nan<", ">inf<"))
    table = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert list(table["label"]) == ["good"]


# --- 5. output hygiene: CSV formulas, bidirectional text, one set of displayed fields --------------------
@pytest.fixture
def hostile_store(data_dir, tmp_path) -> tuple[Path, Path]:
    """Six runs on a small task whose labels are formulas / overrides, and a title with an override."""
    task = small_task(tmp_path, data_dir, n=8, name="bidi", title=f"Cable {RLO}3pm.exe USB")
    store = tmp_path / "hostile-runs"
    for target in LABELS:
        harness.run(task, f"hrlabel:{target}", data_dir=data_dir, store=store, progress=False)
    return store, task


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(hostile_store, tmp_path, capsys):
    store, _ = hostile_store
    out = tmp_path / "out"
    code, _, err = report(capsys, store, out)
    assert code == 0, err
    with open(out / "leaderboard.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert sorted(row["label"] for row in rows) == sorted("'" + label if label[0] in "=+-@\t" else label
                                                          for label in LABELS.values())
    for row in rows:
        for name, value in row.items():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (name, value)
    table = pd.read_csv(out / "leaderboard.csv")
    for name in ("rank", "n", "mae", "mae_ci_low", "mae_ci_high", "rmsle", "hit_rate", "parse_rate"):
        assert pd.api.types.is_numeric_dtype(table[name]), name


def test_csv_neutralises_text_but_keeps_negative_numbers_numbers():
    frame = pd.DataFrame({"label": ["-1.5", "=1+1", "ok", None, "@x", "+3", "\rcr"], "delta": [-1.5, 2.0, -3.0, 0.0,
                                                                                             -0.5, 1.0, 4.0],
                          "rank": [1, 2, 3, 4, 5, 6, 7], "same": [True, False] * 3 + [True]})
    safe = build._csv_safe(frame)
    labels = [v if isinstance(v, str) else None for v in safe["label"].tolist()]      # None or NaN: an empty cell
    assert labels == ["'-1.5", "'=1+1", "ok", None, "'@x", "'+3", "'\rcr"]
    assert safe["delta"].tolist() == [-1.5, 2.0, -3.0, 0.0, -0.5, 1.0, 4.0]
    assert safe["rank"].dtype == frame["rank"].dtype and safe["same"].dtype == bool
    assert frame["label"].tolist()[0] == "-1.5"          # the input frame is not modified


class _Isolation(HTMLParser):
    """Finds text holding a bidirectional control outside any <bdi> or dir="auto" element."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.leaks, self.isolated = [], [], 0

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append((tag, tag == "bdi" or dict(attrs).get("dir") == "auto"))
        for name, value in attrs:
            if value and RLO in value and name not in ("data-sort",):
                self.leaks.append(f"attribute {name}={value!r}")

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if RLO in data:
            if any(isolated for _, isolated in self.stack):
                self.isolated += 1
            else:
                self.leaks.append(f"text {data!r} in {[t for t, _ in self.stack]}")


def test_bidi_overrides_in_titles_replies_and_labels_stay_isolated(hostile_store, tmp_path, capsys):
    store, _ = hostile_store
    out = tmp_path / "out"
    assert report(capsys, store, out)[0] == 0
    pages = sorted(out.rglob("*.html"))
    assert len(pages) == 4 + len(LABELS)           # index, compare, selection, groups, a page per run
    isolated = {}
    for page in pages:
        parser = _Isolation()
        parser.feed(page.read_text(encoding="utf-8"))
        assert parser.leaks == [], (page.name, parser.leaks[:3])
        isolated[page.name] = parser.isolated
    assert isolated["index.html"] >= 1                    # the label with an override
    run_pages = [n for n in isolated if n not in ("index.html", "compare.html", "selection.html", "groups.html")]
    assert all(isolated[n] >= 8 + 1 for n in run_pages)   # every reply, the title (table and worst misses)
    one = (out / "runs" / run_pages[0]).read_text(encoding="utf-8")
    assert f'<td dir="auto">Cable {RLO}3pm.exe USB</td>' in one


def test_svg_tooltips_drop_bidi_controls():
    from harness.report.svg import scatter

    svg = str(scatter([10.0, 20.0], [12.0, 18.0], ["green", "red"], [f"item-{RLO}1", "<b>item-2</b>"]))
    assert RLO not in svg and "item-1" in svg and "&lt;b&gt;item-2&lt;/b&gt;" in svg


def test_html_and_csv_show_the_same_fields_of_a_recorded_run(store, tmp_path, capsys):
    out = tmp_path / "out"
    assert report(capsys, store, out)[0] == 0
    table = pd.read_csv(out / "leaderboard.csv")
    human = table[table["model"] == "reference:human"].iloc[0]
    assert human["provenance"] == "recorded"
    assert pd.isna(human["cost_usd"])                                       # replaying says nothing of it
    timings = pd.read_csv(out / "timings.csv")                              # nor of items/s
    assert "reference:human" not in set(timings["model"])
    assert human["parse_rate"] == 100.0 and human["n"] == 250
    index = (out / "index.html").read_text(encoding="utf-8")
    table = index[index.index('<table class="board'):]          # the chart above it names the rows too
    row = next(tr for tr in table.split("<tr ") if "Human (course author)" in tr)
    cells = row.split('class="num">')
    assert cells[-1].startswith("—") and cells[-2].startswith("—") and "100.0%" in row


def test_mixed_and_verified_runs_are_marked(store, tmp_path, capsys):
    """A run resumed under another environment (--allow-mixed) and a verified run say so in HTML and CSV;
    a hostile shape of those manifest fields still renders."""
    from harness.runs.store import RunStore, read_json, write_json_atomic

    folders = RunStore(store).folders()
    first, second = folders[0].path, folders[1].path
    manifest = read_json(first / "manifest.json")
    manifest["mixed"] = [{"session": 1, "differs": {"batch_size": [8, 16]}}]
    manifest["verifications"] = [{"at": "2026-01-01T00:00:00+00:00", "checked": 8, "identical": 7,
                                  "agreement_pct": 87.5, "stored_mae": 1.0, "recomputed_mae": 2.0}]
    write_json_atomic(first / "manifest.json", manifest)
    hostile = read_json(second / "manifest.json")
    hostile["mixed"] = [{"session": "x", "differs": {"a": "not a pair"}}, 3]
    hostile["verifications"] = ["nonsense"]
    write_json_atomic(second / "manifest.json", hostile)
    out = tmp_path / "out"
    code, _, err = report(capsys, store, out)
    assert code == 0 and "Traceback" not in err, err
    page = (out / "runs" / f"{first.name}.html").read_text(encoding="utf-8")
    assert "MIXED" in page and "batch_size 8 -&gt; 16" in page and "7/8 replies identical" in page
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "b-mixed" in index and "verified 88%" in index
    rows = {r["run_id"]: r for r in csv.DictReader(open(out / "leaderboard.csv", encoding="utf-8"))}
    assert rows[first.name]["mixed"] == "mixed" and float(rows[first.name]["verified_pct"]) == 87.5
    assert rows[second.name]["mixed"] == "mixed" and rows[second.name]["verified_pct"] == ""


# --- 4. the user's files inside the report folder ---------------------------------------------------
def test_a_users_files_in_the_report_folder_survive_a_rebuild(store, tmp_path, capsys):
    out = tmp_path / "out"
    assert report(capsys, store, out)[0] == 0
    (out / "notes.txt").write_text("my notes\n", encoding="utf-8")
    (out / "runs" / "annotated.txt").write_text("mine\n", encoding="utf-8")
    (out / "mine").mkdir()
    (out / "mine" / "data.bin").write_bytes(bytes(range(256)))
    mine = {k: v for k, v in snapshot(out).items() if k.startswith(("notes", "mine", "runs/annotated"))}
    code, _, err = report(capsys, store, out)
    assert code == 0, err
    assert_complete(out, runs=2)
    assert {k: v for k, v in snapshot(out).items() if k in mine} == mine
    assert "notes.txt" not in json.loads((out / MARKER).read_text(encoding="utf-8"))["files"]
    assert hidden(tmp_path) == []


@pytest.mark.parametrize("where", ["leaderboard.csv", "runs"])
def test_a_users_file_where_the_report_writes_is_refused(where, store, tmp_path, capsys):
    """An edited page (no longer the bytes pricebench wrote), or a file where a folder goes: one error naming it."""
    out = tmp_path / "out"
    assert report(capsys, store, out)[0] == 0
    if where == "runs":
        shutil.rmtree(out / "runs")
    (out / where).write_text("mine, now\n", encoding="utf-8")
    before = snapshot(out)
    code, _, err = report(capsys, store, out)
    assert_one_line_error(code, err, str(out / where), "--out", exit_code=2)
    assert ".tmp" not in err
    assert snapshot(out) == before
    assert hidden(tmp_path) == []
