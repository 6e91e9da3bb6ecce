"""Numeric decoding shared by the backends: one price from N sampled replies (`decoding=median|mean`).

The median of sampled answers is the MAE-optimal decision ("regression-aware inference",
Lukasik et al. 2024), the mean the squared-error one. Each sample is parsed as the course parses
a reply (`parse_price`); samples with no number are left out; if none has one, the reply has no
number (a guess of 0, a parse failure). The stored raw reply lists every sample, so a reader can
recompute the decision: `samples_of(raw)` gives them back.
"""
from __future__ import annotations

import json
import statistics

from harness.errors import InputError
from harness.predictors.base import Reply
from harness.scoring import parse_price

SAMPLED = ("median", "mean")
SAMPLE_OPTIONS = ("samples", "temperature", "seed")
DEFAULT_SAMPLES = 8
DEFAULT_TEMPERATURE = 1.0
DEFAULT_SEED = 0
NO_NUMBER = float("nan")    # a price the runner reads as a parse failure, whatever the samples' text holds
_SEPARATOR = " samples: "


def refuse_stray_options(backend: str, given: dict, decoding: str, only_with: dict) -> None:
    """An option that only some decodings read (`only_with`: name -> those decodings), given with
    another decoding, is a mistake (and would make a second run id for the same replies)."""
    for name, modes in only_with.items():
        if name in (given or {}) and decoding not in modes:
            raise InputError(f"{backend}: {name} is for decoding={' or '.join(modes)} (decoding is {decoding})",
                             field=name)


def decide(values: list[float | None], how: str) -> float | None:
    """The median or mean of the numbers among `values` (None: a sample with no number); None if none."""
    if how not in SAMPLED:
        raise ValueError(f"unknown decision {how!r}")
    numbers = [v for v in values if v is not None]
    if not numbers:
        return None
    return float(statistics.median(numbers) if how == "median" else statistics.fmean(numbers))


def sampled_reply(texts: list[str], how: str, usage: dict | None = None) -> Reply:
    """One reply from N sampled texts: raw = `median of 8 samples: ["12.5", "14", ...]` (JSON), price =
    the decision over their parsed numbers (NO_NUMBER when none parses: a parse failure, guess 0)."""
    price = decide([parse_price(text) for text in texts], how)
    raw = f"{how} of {len(texts)}{_SEPARATOR}{json.dumps(texts, ensure_ascii=False)}"
    return Reply(raw=raw, price=NO_NUMBER if price is None else price, usage=dict(usage or {}))


def samples_of(raw: str) -> list[str]:
    """The samples listed in a raw reply written by `sampled_reply`."""
    return json.loads(raw.split(_SEPARATOR, 1)[1])


def recompute(raw: str) -> float | None:
    """The decision a raw reply written by `sampled_reply` stands for (a check a reader can run)."""
    how = raw.split(" of ", 1)[0]
    return decide([parse_price(text) for text in samples_of(raw)], how)
