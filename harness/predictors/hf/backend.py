"""The `hf:` backend's entry (the registry's "hf"): a regression adapter makes a regressor.

`-o adapter=<folder>` naming a folder with a regression head (regression_head.py) builds
HFRegressionPredictor (regression.py), anything else HFPredictor (predictor.py). Kept apart from
both, so that the regressor can build on HFPredictor without either importing the other.
"""
from __future__ import annotations

from pathlib import Path

from harness.predictors.base import ModelSpec, Predictor
from harness.predictors.hf.predictor import HFPredictor
from harness.predictors.hf.regression import HFRegressionPredictor
from harness.predictors.hf.regression_head import read_head


def create(spec: ModelSpec) -> Predictor:
    adapter = (spec.options or {}).get("adapter")
    if isinstance(adapter, str) and adapter and Path(adapter).expanduser().is_dir():
        head = read_head(adapter)
        if head is not None:
            return HFRegressionPredictor(spec, head)
    return HFPredictor(spec)


PREDICTOR = HFPredictor
