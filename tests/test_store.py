"""Run store: cache hits recompute nothing; a SIGKILLed run resumes to identical predictions."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import harness
from harness.predictors import Predictor, Reply, option, register_backend

REPO = Path(__file__).resolve().parent.parent


class CountingPredictor(Predictor):
    calls = 0

    class Options(Predictor.Options):
        temperature: float = option(0.0, ge=0)      # never read: it only has to change the run id

    def predict_batch(self, requests):
        CountingPredictor.calls += len(requests)
        return [Reply(raw=f"{len(r.item.title)}") for r in requests]


def test_second_run_is_a_cache_hit(data_dir, store):
    CountingPredictor.calls = 0
    register_backend("counting", CountingPredictor)
    first = harness.run("amazon8", "counting:x", data_dir=data_dir, store=store)
    assert (first.cached, first.computed, CountingPredictor.calls) == (False, 250, 250)
    log = first.path / "predictions.jsonl"
    stamp = (log.stat().st_mtime_ns, (first.path / "metrics.json").stat().st_mtime_ns)

    again = harness.run("amazon8", "counting:x", data_dir=data_dir, store=store)
    assert again.cached and again.computed == 0 and CountingPredictor.calls == 250
    assert again.run_id == first.run_id
    assert (log.stat().st_mtime_ns, (first.path / "metrics.json").stat().st_mtime_ns) == stamp
    assert again.metrics == first.metrics
    assert again.df["guess"].tolist() == first.df["guess"].tolist()


def test_reference_reruns_are_cache_hits(data_dir, store):
    first = harness.run("amazon8", "reference:gpt-4o-mini", data_dir=data_dir, store=store)
    again = harness.run("amazon8", "reference:gpt-4o-mini", data_dir=data_dir, store=store)
    assert not first.cached and again.cached and again.computed == 0


def test_identity_changes_with_what_defines_a_run(data_dir, store):
    register_backend("counting", CountingPredictor)
    base = harness.run("amazon8", "counting:x", data_dir=data_dir, store=store, eval_slice="0:20")
    ids = {base.run_id}
    for kwargs in ({"prompt": "chat"}, {"options": {"temperature": 0.5}}, {"eval_slice": "0:21"}):
        ids.add(harness.run("amazon8", "counting:x", data_dir=data_dir, store=store,
                            **{"eval_slice": "0:20", **kwargs}).run_id)
    assert len(ids) == 4
    # speed-only options do not change the identity
    same = harness.run("amazon8", "counting:x", data_dir=data_dir, store=store, eval_slice="0:20",
                       options={"batch_size": 3})
    assert same.run_id == base.run_id and same.cached


RUNNER = """
import sys
sys.path.insert(0, {tests!r})
import _slow_predictor, harness
_slow_predictor.register()
harness.run("amazon8", "slowtest:x", data_dir={data!r}, store={store!r}, options={{"delay": {delay}}},
            progress=False)
"""


def _run_slow(data_dir, store, delay, background=False):
    code = RUNNER.format(tests=str(REPO / "tests"), data=str(data_dir), store=str(store), delay=delay)
    cmd = [sys.executable, "-c", code]
    return subprocess.Popen(cmd) if background else subprocess.run(cmd, check=True)


def _records(store):
    (path,) = list(Path(store).glob("*/predictions.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sigkilled_run_resumes_to_identical_predictions(data_dir, tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = _run_slow(data_dir, killed, delay=0.02, background=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        logs = list(killed.glob("*/predictions.jsonl"))
        if logs and logs[0].read_text().count("\n") >= 60:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (folder,) = list(killed.glob("*"))
    done_before = logs[0].read_text().count("\n")
    assert 60 <= done_before < 250 and not (folder / "metrics.json").exists()

    _run_slow(data_dir, killed, delay=0.0)
    _run_slow(data_dir, clean, delay=0.0)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["sessions"][-1]["resumed_from"] >= done_before
    assert manifest["sessions"][-1]["items"] == 250 - manifest["sessions"][-1]["resumed_from"]

    def strip(records):
        return [{k: v for k, v in r.items() if k != "latency_s"} for r in records]

    assert strip(_records(killed)) == strip(_records(clean))
    assert [r["id"] for r in _records(killed)] == [f"amazon8-{i:04d}" for i in range(250)]


def test_torn_last_line_is_dropped_and_redone(data_dir, store):
    register_backend("counting", CountingPredictor)
    first = harness.run("amazon8", "counting:y", data_dir=data_dir, store=store, eval_slice="0:30")
    log = first.path / "predictions.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:10]) + lines[10][:25])       # killed mid-write
    (first.path / "metrics.json").unlink()
    again = harness.run("amazon8", "counting:y", data_dir=data_dir, store=store, eval_slice="0:30")
    assert again.computed == 20 and again.metrics == first.metrics
