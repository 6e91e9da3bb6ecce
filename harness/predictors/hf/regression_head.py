"""A regression adapter's head, as its readers need it: `regression.json` (REGRESSION_FILE: how to
turn the head's output back into dollars and how the text was cut), the tokenizer and the
backbone under a one-output head. Training writes these (harness/finetune/regression.py); hf:
(regression.py here) and finetune: read them, so the format lives here, beside its readers.
"""
from __future__ import annotations

import math
from pathlib import Path

from harness import jsonio
from harness.errors import InputError

REGRESSION_FILE = "regression.json"
Z_LIMIT = 8.0          # standardised log prices are clamped to +-8 sd: a price is always finite and positive
_MAX_HEAD_BYTES = 1 << 16
_HEAD_RANGES = (("mean", -50.0, 50.0), ("std", 0.0, 50.0), ("max_length", 0, 1e6))   # open ranges


def read_head(adapter_dir) -> dict | None:
    """The regression file of an adapter folder (checked), or None for a causal-LM adapter."""
    path = Path(adapter_dir).expanduser() / REGRESSION_FILE
    if not path.is_file():
        return None
    if path.stat().st_size > _MAX_HEAD_BYTES:
        raise InputError(f"larger than {_MAX_HEAD_BYTES} bytes: not a regression file", path=path)
    try:
        head = jsonio.read_json(path)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"not valid JSON ({e})", path=path) from None
    if not isinstance(head, dict) or head.get("objective") != "regression":
        raise InputError("expected 'regression'", path=path, field="objective")
    for key, low, high in _HEAD_RANGES:
        value = head.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value < high:
            raise InputError(f"must be a number in ({low:g}, {high:g}), got {value!r}", path=path, field=key)
    return head


def to_prices(outputs, head: dict) -> list[float]:
    """Head outputs (standardised log prices) -> dollars, clamped so every price is finite and > 0."""
    return [math.exp(max(-Z_LIMIT, min(Z_LIMIT, float(z))) * head["std"] + head["mean"]) for z in outputs]


def load_tokenizer(model_dir, truncation_side: str = "right"):
    """Right padding (the head reads the last real token; positions start at 0 for every row).
    Truncation on the right keeps the title and the start of the description; a prompt with shots
    before the item is cut on the left (the item asked is at its end)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    tokenizer.padding_side = "right"
    tokenizer.truncation_side = truncation_side
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_backbone(model_dir, tokenizer, **kwargs):
    """The base weights under a fresh one-output regression head (seeded by the caller); kwargs
    go to from_pretrained (dtype, quantization_config, device_map)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()          # "score.weight newly initialized": that is the point
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            str(model_dir), num_labels=1, problem_type="regression", **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = tokenizer.pad_token_id   # how the head finds each row's last token
    return model
