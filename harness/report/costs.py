"""What a run cost, read in one place: parameters, training time, items/s and dollars per 1,000 items.

The Base models page sets these against MAE (report/tradeoffs.py). Each is None where the run
does not say (a hand-edited or old manifest): the page leaves that point out and says so.

- parameters: counted when `hf:` loaded the model (manifest info.parameters, an adapter's
  included); else, for the project's test models, the count `hf:` records for them.
- training time: a fine-tune's, from the training record its manifest carries; an open base
  used without training costs 0 s.
- items/s: the run's own speed (manifest timings, as timings.csv).
- $ per 1,000 items: an API run's recorded cost (manifest cost_usd) over the items it scored;
  an API run that recorded no cost (a price pricebench does not know, a local server) has none.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.predictors import EXTRAS
from harness.predictors.hf.testmodels import PARAMETERS
from harness.report.collect import Entry, _number
from harness.report.training import Training

KNOWN_PARAMETERS = {f"hf:{alias}": count for alias, count in PARAMETERS.items()}


@dataclass(frozen=True)
class Costs:
    parameters: int | None = None
    train_s: float | None = None
    items_per_s: float | None = None
    usd_per_1000: float | None = None
    api: bool = False               # a provider's API run (the only rows priced per 1,000 items)


def is_api(e: Entry) -> bool:
    """A run of an API backend (`openai:`, `anthropic:`: the backends of the `api` extra)."""
    return EXTRAS.get(e.model.split(":", 1)[0]) == "api"


def read_costs(e: Entry, base: str | None = None, training: Training | None = None) -> Costs:
    """The costs of run `e`; `base` and `training` as report/selection.base_of found them (None: no
    open base's run)."""
    parameters = None
    if base is not None:
        counted = _number(e.manifest.run_info.get("parameters"))
        parameters = int(counted) if counted is not None and counted > 0 else KNOWN_PARAMETERS.get(base)
    tuned = training is not None or e.kind == "open-finetuned"
    train_s = None if base is None else training.train_s if training is not None else None if tuned else 0.0
    if train_s is not None and train_s < 0:
        train_s = None
    api, cost, n = is_api(e), e.shown["cost_usd"], e.shown["n"]
    usd = 1000 * cost / n if api and cost is not None and cost > 0 and n else None
    speed = e.shown["items_per_s"]
    return Costs(parameters, train_s, speed if speed is not None and speed > 0 else None, usd, api)
