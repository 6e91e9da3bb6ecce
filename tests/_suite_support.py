"""Test-only helpers for the suite and report tests: a tiny predictor and small task copies.

The `testonly:<name>` predictor guesses the true price times a seeded noise factor (so the
scores vary like a real model's) and can be told, through the environment, to crash after
N items: that is how the tests make a job fail half-way and then resume it.
"""
from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import numpy as np

from harness.predictors import option, register_backend
from harness.predictors.base import Predictor, Reply

FAIL_AFTER_ENV = "PRICEBENCH_TEST_FAIL_AFTER"
EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"


class NoisyPredictor(Predictor):
    default_prompt = "chat"
    batch_size = 4
    kind = "model"

    class Options(Predictor.Options):
        suffix: str = option("", description="text appended to every reply")

    def predict(self, requests):
        fail_after = int(os.environ.get(FAIL_AFTER_ENV, "-1"))
        rng = np.random.default_rng(zlib.crc32(self.spec.target.encode()))
        for n, request in enumerate(requests):
            if n == fail_after:
                raise RuntimeError(f"test predictor crashed after {n} items")
            guess = request.item.price * float(rng.lognormal(0.0, 0.5))
            suffix = self.options.suffix
            yield request, Reply(raw=f"Price is ${guess:,.2f} {suffix}".strip(), usage={"cost_usd": 0.0001})


def register() -> None:
    register_backend("testonly", NoisyPredictor)


def small_task(tmp: Path, data_dir: Path, *, n: int = 20, evil_title: bool = False, name: str = "mini",
               title: str | None = None) -> Path:
    """A task YAML over a copy of the first `n` real amazon8 items (optionally with a hostile title:
    `evil_title` for the script-injection one, or any `title`)."""
    folder = tmp / f"data-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    lines = (data_dir / "amazon8" / "test.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    items = [json.loads(line) for line in lines]
    for item in items:
        item["id"] = item["id"].replace("amazon8", name)
    title = EVIL if evil_title else title
    if title:
        items[0]["title"] = title
        items[0]["text"] = title + "\n" + items[0]["text"]
    (folder / "test.jsonl").write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items),
                                       encoding="utf-8")
    spec = {
        "name": name, "description": "test copy", "eval_slice": "all",
        "source": {"local": {"test": str(folder / "test.jsonl"), "train": [{"file": str(folder / "test.jsonl")}]}},
        "prompts": {"base": "How much?\n\n{text}\n\nPrice is $",
                    "chat": {"system": "Price it", "user": "{text}", "assistant_prefix": "Price is $"}},
    }
    path = tmp / f"{name}.yaml"
    import yaml

    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def write_leaderboard(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
