"""A deliberately slow, deterministic predictor for resume tests (not a model backend).

Its guess depends only on the item, so an interrupted-then-resumed run must end with
exactly the predictions of an uninterrupted one. With `log`, each predicted item is appended
to that file with the process id and mount namespace that predicted it (tests count calls and
see where they ran).
"""
from __future__ import annotations

import os
import time
import zlib

from harness.predictors import Predictor, Reply, register_backend, runtime


class SlowPredictor(Predictor):
    batch_size = 1
    kind = "test"

    class Options(Predictor.Options):
        delay: float = runtime(0.02, ge=0, description="seconds per item (speed only: same run id)")
        log: str = runtime("", description="file to append 'pid mount-namespace item-id' lines to")

    def predict_batch(self, requests):
        time.sleep(self.options.delay)
        if self.options.log:
            where = f"{os.getpid()} {os.readlink('/proc/self/ns/mnt')}"
            with open(self.options.log, "a", encoding="utf-8") as log:
                log.writelines(f"{where} {r.item.id}\n" for r in requests)
        return [Reply(raw=f"Price is ${zlib.crc32(r.item.text.encode()) % 500 + 1}.00") for r in requests]


def register() -> None:
    register_backend("slowtest", SlowPredictor)
