"""`baseline:<name>`: the course's traditional-ML baselines, and stronger CPU models, fitted per task.

Each baseline is a scikit-learn estimator whose input is a list of Items, fitted on the
task's train split (the pool plus the task's test items 250-1999) with fixed seeds. Fitted
models are cached on disk by (train-data hash, recipe), so only the first run fits.
The recipes themselves live in harness/baseline_recipes.py.
"""
from __future__ import annotations

import random
import time

import numpy as np
from tqdm.auto import tqdm

from harness.predictors.baselines.recipes import RANDOM, RECIPES, describe
from harness.errors import InputError
from harness.kinds import known_kind
from harness.predictors.baselines.fitted_cache import load_or_fit
from harness.predictors.base import ModelSpec, Predictor, Reply

RECIPE_VERSION = 1      # bump when a recipe's code changes in a way its parameters do not show


def fit_with_progress(estimator, X, y, desc: str):
    """Fit a Pipeline step by step under a tqdm bar (one tick per step), like Pipeline.fit."""
    steps = list(estimator.steps) if hasattr(estimator, "steps") else [("fit", estimator)]
    with tqdm(total=len(steps), desc=f"fitting {desc}", unit="step") as bar:
        for name, step in steps[:-1]:
            bar.set_postfix_str(name)
            X = step.fit_transform(X, y)
            bar.update()
        bar.set_postfix_str(steps[-1][0])
        steps[-1][1].fit(X, y)
        bar.update()
    return estimator


class BaselinePredictor(Predictor):
    """A regressor from item to price: replies are its number, so nothing needs parsing."""

    kind = known_kind("baseline")
    default_prompt = "base"
    batch_size = 1000
    # A regressor reads the item, not a prompt, and is not quantized: either would only give the
    # same predictions a new run id. It takes the common runtime options only.
    quants = ("none",)
    quant_advice = "a fitted regressor has no quantization to choose; drop --quant"
    prompts = (None,)
    reads_prompt = False
    prompt_advice = "a regressor reads the item, not a prompt; drop --prompt"

    class Options(Predictor.Options):
        unknown_advice = "a baseline's recipe is fixed (docs/baselines.md): it takes no model options"

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.name = spec.target
        if self.name != RANDOM and self.name not in RECIPES:
            known = ", ".join([RANDOM, *RECIPES, "knn", "knn-weighted"])
            raise InputError(f"unknown baseline {self.name!r} (known: {known})", field="model")
        self.model = None
        self.info: dict = {}
        self._random_prices: dict[str, float] = {}

    def recipe_identity(self) -> dict:
        if self.name == RANDOM:
            return {"random": "random.Random(42).randrange(1, 1000) per eval item, in order"}
        return describe(RECIPES[self.name].build())

    def identity(self, task) -> dict:
        return {"train_hash": task.train_hash, "baseline": self.name, "recipe": self.recipe_identity(),
                "recipe_version": RECIPE_VERSION}

    def label(self) -> str:
        return "Random price" if self.name == RANDOM else RECIPES[self.name].label

    def prepare(self, task) -> None:
        if self.name == RANDOM:
            # The course's random pricer: seed 42, one draw per evaluated item in order; drawing
            # for the whole slice up front keeps a resumed run identical.
            rng = random.Random(42)
            self._random_prices = {item.id: float(rng.randrange(1, 1000)) for item in task.eval_items()}
            self.info = {"fitted": False}
            return
        recipe = RECIPES[self.name]
        key = self.identity(task)       # train-data hash + recipe: what the fit depends on
        t0 = time.perf_counter()

        def fit():
            train = task.train_items()
            prices = np.array([item.price for item in train], dtype=float)
            return fit_with_progress(recipe.build(), train, prices, f"{self.name} on {task.name}")

        self.model, loaded = load_or_fit(key, fit, name=f"{task.name}-{self.name}")
        self.info = {"fitted_from_cache": loaded, "fit_or_load_s": round(time.perf_counter() - t0, 3),
                     "n_train": len(task.train_items()), "train_hash": task.train_hash}

    def predict_batch(self, requests):
        if self.name == RANDOM:
            prices = [self._random_prices[r.item.id] for r in requests]
        else:
            prices = self.model.predict([r.item for r in requests])
        # The course clamps regressions at zero: a negative price is never a sensible guess.
        return [Reply(raw=f"{max(float(p), 0.0):.2f}", price=max(float(p), 0.0)) for p in prices]

    def run_info(self) -> dict:
        return {"label": self.label(), "kind": self.kind, "baseline": self.name, **self.info}

    def close(self) -> None:
        self.model = None


def create(spec: ModelSpec) -> Predictor:
    from harness.predictors.baselines.knn import KNN, KNNPredictor

    if spec.target in KNN:                 # priced from the in-context neighbours (baselines/knn.py)
        return KNNPredictor(spec)
    if not spec.target:
        known = ", ".join([RANDOM, *RECIPES, *KNN])
        raise InputError(f"baseline needs a name, e.g. baseline:bow-linreg (known: {known})",
                         field="model")
    return BaselinePredictor(spec)


PREDICTOR = BaselinePredictor
