"""Progress of a run's predictions: tqdm's bar on a terminal, plain lines in a log.

`pricebench run` shows tqdm's bar when stderr is a terminal. Each model job of a suite shows
one too, named `[k/n] task | model`; where stderr is not a terminal (CI, `2> log`), a bar
would be one endless line of carriage returns, so `LineProgress` writes a plain line every
`every` seconds instead, with tqdm's own figures (items done / total, items/s, ETA). Either
way a job that finishes in its first seconds (a cached or recorded one) shows nothing.
"""
from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm

LINE = "{desc}: {n_fmt}/{total_fmt}{unit} ({percentage:.0f}%), {rate_fmt}, elapsed {elapsed}, ETA {remaining}"
TERMINAL_DELAY_S = 2.0       # a bar appears only for a job still predicting after this long


def progress_bar(progress, total: int, desc: str):
    """The bar `runner.run` updates per item. `progress`: None (a bar where stderr is a terminal),
    True / False, or a factory `progress(total, desc)` returning an object with update() and close()."""
    if callable(progress):
        return progress(total, desc)
    return tqdm(total=total, desc=desc, unit="item", disable=None if progress is None else not progress, leave=False)


class LineProgress:
    """A progress bar for logs: one plain line every `every` seconds, and a last one at the end
    (only if it wrote any)."""

    def __init__(self, total: int, desc: str, *, every: float = 10.0, file=None, unit: str = "item"):
        self.total, self.desc, self.every, self.file, self.unit = total, desc, every, file, unit
        self.n, self.written = 0, None          # items done; items done at the last line written
        self.start = self.last = time.monotonic()
        self.postfix = ""

    def set_postfix(self, values: dict) -> None:
        """Figures shown after the meter (a training's last loss, tokens/s), as tqdm's bar shows them."""
        self.postfix = ", ".join(f"{key} {value}" for key, value in values.items())

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every:
            self._write(now)

    def close(self) -> None:
        if self.written is not None and self.written != self.n:
            self._write(time.monotonic())

    def _write(self, now: float) -> None:
        line = tqdm.format_meter(self.n, self.total, now - self.start, prefix=self.desc, unit=f" {self.unit}s",
                                 bar_format=LINE).replace(",  ", ", ")
        print(f"{line}, {self.postfix}" if self.postfix else line, file=self.file or sys.stderr, flush=True)
        self.last, self.written = now, self.n


def job_progress(desc: str, *, every: float = 10.0, unit: str = "item"):
    """A `progress` factory for one job of a suite (`unit`: item, or step for a training): tqdm's bar
    (after TERMINAL_DELAY_S) on a terminal, else a LineProgress."""
    def make(total: int, _default_desc: str):
        if sys.stderr.isatty():
            return tqdm(total=total, desc=desc, unit=unit, delay=TERMINAL_DELAY_S, leave=False)
        return LineProgress(total, desc, every=every, unit=unit)
    return make
