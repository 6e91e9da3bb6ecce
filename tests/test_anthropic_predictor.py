"""The anthropic: predictor against a local Messages-API server with injected faults.

Each item gets a scripted fault (429, 500, malformed JSON, an empty reply, a timeout, or a
500 that outlasts every retry). The run must end with every item answered - with the
reply meant for that item - or recorded as failed; a re-run asks only the failed ones.
"""
from __future__ import annotations

import json
import secrets
from pathlib import Path

import pandas as pd
import pytest

from tests._fake_anthropic import expected_reply, running, text_key
from harness.errors import InputError
from harness.predictors import ModelSpec, make_predictor
from harness.runs.runner import run
from harness.tasks import load_task

N_ITEMS = 14
# max_retries=2 -> 3 attempts per run: "500x3" fails the first run and succeeds on the re-run.
FAULTS = ["ok", "429", "500", "malformed", "empty", "timeout", "500x3"]
OPTIONS = {"max_retries": 2, "timeout": 1.0, "delay": 0.01, "concurrency": 4}
MODEL = "anthropic:claude-3-5-sonnet-20240620"


def _user_text(request_messages) -> str:
    return next(m["content"] for m in request_messages if m["role"] == "user")


@pytest.fixture
def api_key(monkeypatch) -> str:
    key = "sk-ant-test-" + secrets.token_hex(16)
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    return key


@pytest.fixture
def task(data_dir):
    return load_task("amazon8", data_dir=data_dir, eval_slice=f"0:{N_ITEMS}")


@pytest.fixture
def fake_server(tmp_path, api_key, task):
    """Start tests/_fake_anthropic.py on 127.0.0.1 with a fault per item; stop it by PID."""
    from harness.prompts import build_requests

    requests = build_requests(task, task.eval_items(), "chat")
    plan = {text_key(_user_text(r.messages)): FAULTS[i % len(FAULTS)] for i, r in enumerate(requests)}
    with running(plan, tmp_path, api_key) as (url, log):
        yield {"url": url, "plan": plan, "log": log, "requests": requests}


def _served(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_faults_end_answered_or_failed_and_rerun_asks_only_failed(fake_server, task, store, api_key):
    options = {**OPTIONS, "base_url": fake_server["url"]}
    first = run(task, MODEL, options=options, store=store, progress=False)

    expected = {r.item.id: expected_reply(_user_text(r.messages)) for r in fake_server["requests"]}
    fault_of = {r.item.id: fake_server["plan"][text_key(_user_text(r.messages))] for r in fake_server["requests"]}
    df = first.df.set_index("id")
    assert len(df) == N_ITEMS
    for item_id, row in df.iterrows():
        if fault_of[item_id] == "500x3":
            assert pd.isna(row["raw"]) and "server-500" in row["failure"], row.to_dict()
            assert "***" in row["failure"]          # the server echoed the key; it was scrubbed
        else:
            assert pd.isna(row["failure"]), (fault_of[item_id], row["failure"])
            assert row["raw"] == expected[item_id]            # the reply meant for this very item
            assert row["price"] == float(expected[item_id])
    failed = set(df.index[df["failure"].notna()])
    assert failed == {i for i, f in fault_of.items() if f == "500x3"} and failed
    assert first.manifest["status"] == "complete-with-failures"
    assert first.metrics["failed"] == len(failed)
    info = first.manifest["info"]
    assert info["retries"] >= len([f for f in fault_of.values() if f != "ok"])
    assert {"rate-limit", "server-500", "malformed", "timeout"} <= set(info["error_kinds"])
    usage = first.manifest["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] == 3 * (N_ITEMS - len(failed))
    price = info["price_per_mtok"]
    assert first.manifest["cost_usd"] == pytest.approx(
        (usage["prompt_tokens"] * price["input"] + usage["completion_tokens"] * price["output"]) / 1e6, abs=1e-6)

    # The key rode in a header and came back in error bodies: it must be in no file of the run.
    for path in Path(first.path).rglob("*"):
        if path.is_file():
            assert api_key not in path.read_text(encoding="utf-8", errors="replace"), path

    before = len(_served(fake_server["log"]))
    second = run(task, MODEL, options=options, store=store, progress=False)
    asked_again = {entry["key"] for entry in _served(fake_server["log"])[before:]}
    failed_keys = {text_key(_user_text(r.messages)) for r in fake_server["requests"] if r.item.id in failed}
    assert asked_again == failed_keys
    assert second.run_id == first.run_id and second.computed == len(failed)
    assert second.manifest["status"] == "complete" and second.metrics["failed"] == 0
    assert (second.df.set_index("id")["raw"] == [expected[i] for i in second.df["id"]]).all()

    before = len(_served(fake_server["log"]))
    third = run(task, MODEL, options=options, store=store, progress=False)
    assert third.cached and len(_served(fake_server["log"])) == before


def test_bad_key_fails_fast_without_retries(fake_server, task, store, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-wrong")
    result = run(task, MODEL, options={**OPTIONS, "base_url": fake_server["url"]}, eval_slice=None, store=store,
                 progress=False)
    assert result.df["failure"].str.contains("AuthenticationError").all()
    assert all(entry["served"] == "401" for entry in _served(fake_server["log"]))
    assert len(_served(fake_server["log"])) == N_ITEMS          # one attempt each: 401 is not retried


def test_missing_key_is_a_clear_error(task, store, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(InputError, match="ANTHROPIC_API_KEY"):
        run(task, MODEL, store=store, progress=False)
    monkeypatch.setenv("MY_CLAUDE_KEY", "x")
    with pytest.raises(InputError, match="NO_SUCH_VAR"):
        run(task, MODEL, options={"api_key_env": "NO_SUCH_VAR"}, store=store, progress=False)


def test_key_as_option_is_refused():
    with pytest.raises(InputError, match="api_key_env"):
        make_predictor(ModelSpec(MODEL, options={"api_key": "sk-ant-secret"}))


def test_base_prompt_is_refused():
    with pytest.raises(InputError, match="chat"):
        make_predictor(ModelSpec(MODEL, prompt="base"))
