"""The course's parse and colours, the CI and the paired bootstrap."""
from __future__ import annotations

import numpy as np
import pytest

import harness
from harness.cli import main
from harness.scoring import bootstrap_ci, colour, paired_bootstrap, parse_price, score_item


@pytest.mark.parametrize("reply, price", [
    ("Price is $1,234.50", 1234.5), ("$99", 99.0), (" 42.", 42.0), ("about .99 dollars", 0.99),
    ("-5.5", -5.5), ("-5", 5.0), ("between 10 and 20", 10.0), ("I cannot tell", None), ("", None), (None, None),
])
def test_course_parse(reply, price):
    assert parse_price(reply) == price


@pytest.mark.parametrize("guess, truth, expected", [
    (139.9, 100, "green"), (1150, 1000, "green"), (140, 100, "orange"),     # < $40; < 20%; $40 = 40%
    (500, 800, "orange"), (181, 100, "red"), (0, 300, "red"), (10, 10, "green"),
    (0, 10, "green"),                                                        # the course's $40 rule
])
def test_course_colours(guess, truth, expected):
    assert colour(abs(guess - truth), truth) == expected


def test_unparsed_reply_counts_as_zero_and_a_failure():
    from harness.predictors.base import Reply
    from harness.prompts import Request
    from harness.runs.runner import make_record
    from harness.data import Item

    item = Item("x-1", "t", "text", None, None, 50.0)
    record = make_record(Request(item, "base", prompt="p"), Reply(raw="no idea"))
    assert record["guess"] == 0 and record["parsed"] is False and record["error"] == 50.0
    assert record["sle"] == score_item(0, 50)["sle"] and record["colour"] == "orange"


def test_bootstrap_is_seeded_and_covers_the_mean():
    values = np.random.default_rng(1).exponential(100, 250)
    assert bootstrap_ci(values) == bootstrap_ci(values)
    lo, hi = bootstrap_ci(values)
    assert lo < values.mean() < hi and hi - lo < 0.5 * values.mean()


def test_paired_bootstrap_separates_gpt4o_from_the_human(data_dir, store):
    human = harness.run("amazon8", "reference:human", data_dir=data_dir, store=store).df
    gpt4o = harness.run("amazon8", "reference:gpt-4o-2024-08-06", data_dir=data_dir, store=store).df
    bow = harness.run("amazon8", "reference:bow-linreg", data_dir=data_dir, store=store).df
    w2v = harness.run("amazon8", "reference:word2vec-linreg", data_dir=data_dir, store=store).df
    assert paired_bootstrap(gpt4o["error"], human["error"])["better"] == "A"
    assert paired_bootstrap(human["error"], gpt4o["error"])["better"] == "B"
    close = paired_bootstrap(bow["error"], w2v["error"])          # $113.60 vs $115.71
    assert close["better"] is None and close["ci_low"] < 0 < close["ci_high"]
    same = paired_bootstrap(human["error"], human["error"])
    assert same["better"] is None and same["p_value"] == 1.0


def test_show_and_compare_commands(data_dir, store, capsys):
    a = harness.run("amazon8", "reference:gpt-4o-mini", data_dir=data_dir, store=store)
    b = harness.run("amazon8", "reference:random", data_dir=data_dir, store=store)
    assert main(["--store", str(store), "show", a.run_id[:6], "--worst", "3"]) == 0
    out = capsys.readouterr().out
    assert "MAE $79.58" in out and "95% CI" in out and out.count("truth $") == 3
    worst = a.df.sort_values("error").iloc[-1]
    assert worst["id"] in out
    assert main(["--store", str(store), "compare", a.run_id, b.run_id]) == 0
    assert "A is significantly better" in capsys.readouterr().out
