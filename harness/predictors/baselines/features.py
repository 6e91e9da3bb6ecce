"""The course's hand-made features, read from Amazon's `details`, never crashing on odd values.

The course's linear model uses four numbers per item: item weight (pounds), the mean
best-sellers rank, the text length and whether the brand is a top electronics brand.
Amazon's details are messy ("1.2 Pounds", "500 grams", "1,234 ounces", ranks as a dict or a
string), so every parser returns None for anything it cannot read; the pipeline then fills
gaps with the training mean, as the course did.
"""
from __future__ import annotations

import math
import re

import numpy as np

from harness.data import Item

FEATURE_NAMES = ("weight_lb", "rank", "text_length", "top_electronics_brand")
TOP_ELECTRONICS_BRANDS = frozenset({"hp", "dell", "lenovo", "samsung", "asus", "sony", "canon", "apple", "intel"})
POUNDS_PER_UNIT = {
    "pound": 1.0, "pounds": 1.0, "lb": 1.0, "lbs": 1.0,
    "ounce": 1 / 16, "ounces": 1 / 16, "oz": 1 / 16,
    "gram": 1 / 453.592, "grams": 1 / 453.592, "g": 1 / 453.592,
    "milligram": 1 / 453_592, "milligrams": 1 / 453_592, "mg": 1 / 453_592,
    "kilogram": 1 / 0.453592, "kilograms": 1 / 0.453592, "kg": 1 / 0.453592,
    "hundredths pounds": 1 / 100, "hundredths pound": 1 / 100,
}
_WEIGHT = re.compile(r"([\d.,]+)\s*([a-z]+(?:\s+pounds?)?)", re.IGNORECASE)
_HASH_RANK = re.compile(r"#\s*(\d[\d,]*)")


def _finite(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def parse_weight(value) -> float | None:
    """'19.3 pounds', '8 Ounces', '1,200 grams', '5 hundredths pounds' -> pounds; else None."""
    if not isinstance(value, str):
        return None
    m = _WEIGHT.search(value.strip())
    if not m:
        return None
    unit = " ".join(m.group(2).lower().split())
    factor = POUNDS_PER_UNIT.get(unit) or POUNDS_PER_UNIT.get(unit.split()[0])
    try:
        amount = float(m.group(1).replace(",", ""))
    except ValueError:
        return None
    return _finite(amount * factor) if factor else None


def parse_rank(value) -> float | None:
    """Best Sellers Rank: a {category: rank} dict (the mean, as the course) or '#1,234 in X' text."""
    if isinstance(value, dict):
        ranks = [v for v in value.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    elif isinstance(value, str):
        ranks = [int(n.replace(",", "")) for n in _HASH_RANK.findall(value)]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        ranks = [value]
    else:
        ranks = []
    return _finite(sum(ranks) / len(ranks)) if ranks else None


def is_top_electronics_brand(details: dict) -> float:
    brand = details.get("Brand")
    return 1.0 if isinstance(brand, str) and brand.strip().lower() in TOP_ELECTRONICS_BRANDS else 0.0


def item_features(item: Item) -> list[float]:
    """One row of FEATURE_NAMES; NaN where the details say nothing usable."""
    details = item.details_dict()
    weight, rank = parse_weight(details.get("Item Weight")), parse_rank(details.get("Best Sellers Rank"))
    return [np.nan if weight is None else weight, np.nan if rank is None else rank,
            float(len(item.text)), is_top_electronics_brand(details)]


def feature_matrix(items) -> np.ndarray:
    """Items -> (n, 4) float array: the first step of the features-linreg Pipeline."""
    return np.array([item_features(item) for item in items], dtype=float).reshape(-1, len(FEATURE_NAMES))


def item_texts(items) -> list[str]:
    """Items -> their text (title + details body): what the text models read."""
    return [item.text for item in items]
