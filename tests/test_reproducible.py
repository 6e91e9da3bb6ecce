"""Reproducible runs, for real on the CPU: nothing that changes a reply stays out of the run id,
a run never silently mixes two environments, and `verify` recomputes items to audit a run.

SmolLM2 fp32 (batch-invariant, checked at load) and Gemma 3 270M at bitsandbytes 8-bit (not
batch-invariant: its batch size is part of the run id).
"""
from __future__ import annotations

import json

import pytest

from harness.predictors import ModelSpec, make_predictor
from harness.tasks import load_task
from tests._hostile import assert_one_line_error, cli

pytest.importorskip("transformers")
pytestmark = pytest.mark.slow
SMOL, GEMMA = "hf:smollm2-135m-instruct", "hf:gemma-3-270m"


def _run(capsys, store, model, *extra):
    code, out, err = cli(capsys, "--store", store, "run", "--task", "amazon8", "--model", model, "--slice", "0:16",
                         "--prompt", "base", "--json", *extra)
    return code, (json.loads(out) if code == 0 and out.strip() else None), err


def test_identity_takes_the_batch_size_only_where_replies_depend_on_it(data_dir):
    from harness.runs.runner import run_identity

    task = load_task("amazon8", data_dir=data_dir, eval_slice="0:16")

    def rid(model, quant, batch):
        predictor = make_predictor(ModelSpec(model, quant=quant, prompt="base",
                                             options={"batch_size": batch, "device": "cpu"}))
        return run_identity(task, predictor.spec, predictor)[1]

    assert rid(SMOL, "none", 8) == rid(SMOL, "none", 16)             # dense fp32 on the CPU: invariant
    assert rid(GEMMA, "8bit", 8) != rid(GEMMA, "8bit", 16)           # bitsandbytes: one id per batch size
    assert rid(GEMMA, "4bit", 8) != rid(GEMMA, "4bit", 16)


def test_fp32_run_verifies_at_100_percent(tmp_path, capsys):
    store = tmp_path / "runs"
    code, result, err = _run(capsys, store, SMOL, "-o", "batch_size=8")
    assert code == 0, err
    manifest = json.loads((store / result["run_id"] / "manifest.json").read_text())
    env = manifest["sessions"][-1]["environment"]
    assert env["batch_size"] == 8 and env["batch_invariance"].startswith("checked at load")

    code, out, err = cli(capsys, "--store", store, "verify", result["run_id"], "--items", "8")
    assert code == 0 and "8/8 replies identical (100.0%)" in out, (out, err)
    code, out, err = cli(capsys, "--store", store, "verify", result["run_id"], "--items", "6", "-o", "batch_size=3")
    assert code == 0 and "6/6 replies identical (100.0%)" in out, (out, err)   # invariant: any batch size
    manifest = json.loads((store / result["run_id"] / "manifest.json").read_text())
    assert [v["checked"] for v in manifest["verifications"]] == [8, 6]
    code, out, _ = cli(capsys, "--store", store, "show", result["run_id"][:6])
    assert "last verified" in out and "6/6 replies identical" in out


def test_8bit_batch_sizes_are_two_runs_and_a_mixed_resume_is_refused(tmp_path, capsys):
    store = tmp_path / "runs"
    code, at8, err = _run(capsys, store, GEMMA, "--quant", "8bit", "-o", "batch_size=8")
    assert code == 0, err
    code, at16, err = _run(capsys, store, GEMMA, "--quant", "8bit", "-o", "batch_size=16")
    assert code == 0, err
    assert at8["run_id"] != at16["run_id"]                            # never one id with two answers

    def replies(rid):
        return [json.loads(line)["raw"] for line in (store / rid / "predictions.jsonl").read_text().splitlines()]

    differ = sum(a != b for a, b in zip(replies(at8["run_id"]), replies(at16["run_id"])))

    # verify the batch-8 run at batch 16: the environment differs, and so do replies (when they do)
    code, out, err = cli(capsys, "--store", store, "verify", at8["run_id"], "--items", "16", "-o", "batch_size=16")
    assert "environment differs: batch_size 8 -> 16" in out
    assert (code == 0) == (differ == 0) and f"{16 - differ}/16 replies identical" in out, (out, err, differ)

    # a killed batch-8 run resumed with another thread count would mix two environments: refused ...
    import torch

    folder = store / at8["run_id"]
    lines = (folder / "predictions.jsonl").read_text().splitlines(keepends=True)
    (folder / "predictions.jsonl").write_text("".join(lines[:10]))
    (folder / "metrics.json").unlink()
    threads = torch.get_num_threads()
    other = 1 if threads > 1 else 2
    torch.set_num_threads(other)
    try:
        code, _, err = _run(capsys, store, GEMMA, "--quant", "8bit", "-o", "batch_size=8")
        assert_one_line_error(code, err, "environment", f"threads {threads} -> {other}", "--allow-mixed",
                              exit_code=2)
        assert not (folder / "metrics.json").exists()
        assert len((folder / "predictions.jsonl").read_text().splitlines()) == 10

        # ... unless asked, and then the run says it is mixed
        code, result, err = _run(capsys, store, GEMMA, "--quant", "8bit", "-o", "batch_size=8", "--allow-mixed")
    finally:
        torch.set_num_threads(threads)
    assert code == 0 and result["metrics"]["n"] == 16, err
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["mixed"][0]["differs"]["threads"] == [threads, other]
    code, out, _ = cli(capsys, "--store", store, "show", at8["run_id"])
    assert f"MIXED: session 2 ran under another environment (threads {threads} -> {other})" in out
