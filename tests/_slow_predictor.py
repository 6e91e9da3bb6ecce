"""A deliberately slow, deterministic predictor for resume tests (not a model backend).

Its guess depends only on the item, so an interrupted-then-resumed run must end with
exactly the predictions of an uninterrupted one.
"""
from __future__ import annotations

import time
import zlib

from harness.predictors import Predictor, Reply, register_backend, runtime


class SlowPredictor(Predictor):
    batch_size = 1
    kind = "test"

    class Options(Predictor.Options):
        delay: float = runtime(0.02, ge=0, description="seconds per item (speed only: same run id)")

    def predict_batch(self, requests):
        time.sleep(self.options.delay)
        return [Reply(raw=f"Price is ${zlib.crc32(r.item.text.encode()) % 500 + 1}.00") for r in requests]


def register() -> None:
    register_backend("slowtest", SlowPredictor)
