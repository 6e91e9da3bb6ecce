"""The course's item rules (LLM Engineering, 2024 edition, `items.py` / `loaders.py`), one function each.

Kept exactly as the course wrote them, quirks included, so a curated task is built the way the
course's 400k/2k data was: the price is `float(price)` of a plain number in [0.50, 999.49]; the
contents are description + features + details (with the course's substring REMOVALS on the
details JSON), cut to 7 characters per token, scrubbed (`scrub`), prefixed by the scrubbed title,
and kept only with more than MIN_TOKENS tokens, then cut to MAX_TOKENS tokens and decoded.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

MIN_PRICE, MAX_PRICE = 0.5, 999.49
MIN_TOKENS, MAX_TOKENS, MIN_CHARS = 150, 160, 300
CHARS_PER_TOKEN = 7           # the course's CEILING_CHARS = MAX_TOKENS * 7
# The course removes these substrings from the details JSON string (not keys: "Item" also cuts
# "Item Weight" to " Weight", ":" goes everywhere); reproduced as is.
REMOVALS = ['"Batteries Included?": "No"', '"Batteries Included?": "Yes"', '"Batteries Required?": "No"',
            '"Batteries Required?": "Yes"', "By Manufacturer", "Item", "Date First", "Package", ":", "Number of",
            "Best Sellers", "Number", "Product "]
_PUNCT = re.compile(r'[:\[\]"{}【】\s]+')
_PLAIN_NUMBER = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*")
_RANGE = re.compile(r"\s*\$?\s*[\d.,]+\s*[-–]\s*\$?\s*[\d.,]+\s*")


class Skip(Exception):
    """A raw record the course's rules leave out; `reason` is the data card's counter."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Rules:
    min_tokens: int = MIN_TOKENS
    max_tokens: int = MAX_TOKENS
    min_chars: int = MIN_CHARS


def parse_price(value) -> float:
    """The course's `float(price)` on a plain number, kept in [MIN_PRICE, MAX_PRICE]; else Skip."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "none", "null")):
        raise Skip("no price")
    if isinstance(value, bool):
        raise Skip("price not a number")
    if isinstance(value, (int, float)):
        price = float(value)
    elif isinstance(value, str) and _PLAIN_NUMBER.fullmatch(value):
        price = float(value)
    elif isinstance(value, str) and _RANGE.fullmatch(value):
        raise Skip("price is a range")
    else:
        raise Skip("price not a number")    # "$19.99", "1,299.00": float() refuses them, so did the course
    if not math.isfinite(price) or not MIN_PRICE <= price <= MAX_PRICE:
        raise Skip("price out of range")
    return price


def string_list(record: dict, name: str) -> list[str]:
    """`description` / `features`: a list of strings; missing or null is empty; another shape is a Skip."""
    value = record.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Skip(f"{name} not a list of strings")
    return value


def details_json(record: dict) -> str | None:
    """`details` as the hub's JSON string of an object (raw dumps hold an object; the hub's loader a string)."""
    value = record.get("details")
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            raise Skip("details not an object") from None
        if not isinstance(parsed, dict):
            raise Skip("details not an object")
        return value if parsed else None
    if isinstance(value, dict):
        try:
            return json.dumps(value, ensure_ascii=False, allow_nan=False) if value else None
        except (TypeError, ValueError):          # a NaN or 400-digit number inside (strict_json's BadNumber)
            raise Skip("details hold a non-JSON number") from None
    raise Skip("details not an object")


def scrub(text: str) -> str:
    """The course's `scrub`: punctuation runs to one space, then drop words of 7+ characters with a digit."""
    text = _PUNCT.sub(" ", text).strip()
    text = text.replace(" ,", ",").replace(",,,", ",").replace(",,", ",")
    return " ".join(w for w in text.split(" ") if len(w) < 7 or not any(c.isdigit() for c in w))


def contents(description: list[str], features: list[str], details: str | None) -> str:
    """The course's `parse`: description lines, feature lines, the details string with REMOVALS."""
    text = "\n".join(description)
    if text:
        text += "\n"
    joined = "\n".join(features)
    if joined:
        text += joined + "\n"
    if details:
        for remove in REMOVALS:
            details = details.replace(remove, "")
        text += details + "\n"
    return text


def prompt_text(title: str, body: str, tokenizer, rules: Rules) -> str:
    """title + contents, scrubbed, cut to max_tokens (the course: more than min_tokens needed), decoded."""
    if len(body) <= rules.min_chars:
        raise Skip("contents too short")
    body = body[: rules.max_tokens * CHARS_PER_TOKEN]
    text = f"{scrub(title)}\n{scrub(body)}"
    tokens = tokenizer.encode(text, add_special_tokens=False)
    if len(tokens) <= rules.min_tokens:
        raise Skip("too few tokens")
    text = tokenizer.decode(tokens[: rules.max_tokens])
    if not text.strip():
        raise Skip("too few tokens")
    return text


def normalized_title(title: str) -> str:
    """De-duplication key: case and spacing do not make two products different."""
    return " ".join(title.lower().split())
