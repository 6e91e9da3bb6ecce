"""The shared API pieces: which errors are retried, backoff bounds, price lookup."""
from __future__ import annotations

import pytest

from harness.errors import InputError
from harness.predictors.api.common import PRICES_PATH, backoff_delay, cost_usd, lookup_price, status_kind


@pytest.mark.parametrize("status, kind", [(429, "rate-limit"), (500, "server-500"), (503, "server-503"),
                                          (408, "timeout"), (400, None), (401, None), (404, None), (None, None)])
def test_retry_policy_by_status(status, kind):
    assert status_kind(status) == kind


def test_backoff_grows_and_is_capped():
    for attempt in range(10):
        delay = backoff_delay(attempt, base=1.0, cap=30.0)
        assert min(30.0, 2 ** attempt) * 0.5 <= delay <= min(30.0, 2 ** attempt)


def test_price_lookup_prefers_longest_prefix():
    assert lookup_price("openai", "gpt-4o-mini-2024-07-18", PRICES_PATH) == {"input": 0.15, "output": 0.60}
    assert lookup_price("openai", "gpt-4o-2024-08-06", PRICES_PATH) == {"input": 2.50, "output": 10.00}
    assert lookup_price("openai", "ft:gpt-4o-mini-2024-07-18:org::x", PRICES_PATH)["input"] == 0.30
    assert lookup_price("anthropic", "some-unknown-model", PRICES_PATH) is None
    assert cost_usd({"input": 3.0, "output": 15.0}, 1_000_000, 1_000) == pytest.approx(3.015)
    assert cost_usd(None, 10, 10) is None


def test_bad_price_table_names_file_and_field(tmp_path):
    table = tmp_path / "prices.yaml"
    table.write_text("openai:\n  gpt-x: [1, 2]\n")
    with pytest.raises(InputError) as error:
        lookup_price("openai", "gpt-x", table)
    assert str(table) in str(error.value) and "openai.gpt-x" in str(error.value)
    table.write_text("openai: {gpt-x: {input: 1, output: 2}\n")
    with pytest.raises(InputError, match="invalid YAML"):
        lookup_price("openai", "gpt-x", table)
