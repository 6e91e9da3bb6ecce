"""hf:'s load-time batching check keeps its replies: the same check asked again (same model,
prompts, settings, software and machine) reads them instead of generating, anything else that
could change them makes another check, and a damaged kept file is checked again, never trusted."""
from __future__ import annotations

import pytest

from harness.predictors import ModelSpec, make_predictor
from harness.predictors.hf import checks
from harness.tasks import load_task

pytest.importorskip("transformers")
SMOL = "hf:smollm2-135m-instruct"


@pytest.fixture
def kept(tmp_path, monkeypatch):
    monkeypatch.setattr(checks, "cache_root", lambda: tmp_path)
    return tmp_path / "checks"


def _prepared(task, monkeypatch, **options):
    """A fresh predictor after prepare(task), and how many generate calls its check made."""
    predictor = make_predictor(ModelSpec(SMOL, prompt="base", options={"batch_size": 4, **options}))
    calls = []
    plain = predictor._generate
    monkeypatch.setattr(predictor, "_generate", lambda *a, **k: calls.append(1) or plain(*a, **k))
    predictor.prepare(task)
    return predictor, len(calls)


@pytest.mark.slow
def test_the_same_check_reads_its_kept_replies_and_a_damaged_file_is_checked_again(data_dir, kept, monkeypatch):
    task = load_task("amazon8", data_dir=data_dir, eval_slice="0:8")
    first, generated = _prepared(task, monkeypatch)
    assert generated == 4                                    # three prompts alone, then together
    verdict = first._info["batch_invariance"]
    assert verdict.startswith("checked at load (3 prompts alone vs one padded batch: identical")
    files = list(kept.glob("*.json"))
    assert len(files) == 1

    again, generated = _prepared(task, monkeypatch)
    assert generated == 0 and again._info["batch_invariance"].endswith("kept in the cache)")
    assert again._probe == first._probe                      # check_prefix reuses them as before

    other, generated = _prepared(task, monkeypatch, max_new_tokens=5)    # other replies: another check
    assert generated == 4 and len(list(kept.glob("*.json"))) == 2

    files[0].write_text('{"alone": ["1"], "together": "not a list"}')
    damaged, generated = _prepared(task, monkeypatch)
    assert generated == 4 and damaged._info["batch_invariance"] == verdict
