"""What each `baseline:<name>` is: an unfitted scikit-learn estimator that takes a list of Items.

The first seven are the course's (same names as its recorded runs, same models and settings,
fixed seeds); the rest are stronger CPU models picked by measured numbers (docs/baselines.md).
A recipe's parameters (via `describe`) are part of its run identity and its fitted-cache key.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.decomposition import TruncatedSVD
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import LinearSVR

from harness.predictors.baselines.features import feature_matrix, item_texts
from harness.predictors.baselines.word2vec import Word2VecVectorizer

RANDOM = "random"       # no estimator: seeded draws (see BaselinePredictor)
SEED = 42


@dataclass(frozen=True)
class Recipe:
    label: str
    build: Callable[[], object]
    about: str


def _texts():
    return ("texts", FunctionTransformer(item_texts))


def _log_price(regressor):
    """Fit on log(1 + price) and answer in dollars: prices span three orders of magnitude."""
    return TransformedTargetRegressor(regressor=regressor, func=np.log1p, inverse_func=np.expm1)


def _word2vec(regressor, name):
    return lambda: Pipeline([_texts(), ("word2vec", Word2VecVectorizer(vector_size=400, seed=SEED)),
                             (name, regressor())])


RECIPES: dict[str, Recipe] = {
    "constant-mean": Recipe(
        "Constant: training-set mean", lambda: DummyRegressor(strategy="mean"),
        "Always the mean training price."),
    "features-linreg": Recipe(
        "Feature engineering + linear regression",
        lambda: Pipeline([("features", FunctionTransformer(feature_matrix)),
                          ("impute", SimpleImputer(strategy="mean")), ("linreg", LinearRegression())]),
        "Item weight, mean best-sellers rank, text length, top-electronics-brand flag; gaps filled "
        "with the training mean; ordinary least squares."),
    "bow-linreg": Recipe(
        "Bag of words + linear regression",
        lambda: Pipeline([_texts(), ("bow", CountVectorizer(max_features=1000, stop_words="english")),
                          ("linreg", LinearRegression())]),
        "Counts of the 1,000 most frequent non-stop words; ordinary least squares."),
    "word2vec-linreg": Recipe(
        "word2vec + linear regression", _word2vec(LinearRegression, "linreg"),
        "Mean of 400-dim word2vec vectors trained on the train split; ordinary least squares."),
    "word2vec-svr": Recipe(
        "word2vec + linear SVR",
        _word2vec(lambda: make_pipeline(StandardScaler(), LinearSVR(random_state=SEED, max_iter=5000)), "svr"),
        "The same document vectors, standardised (liblinear regularises the intercept, so on raw vectors "
        "it cannot reach the price level); linear support vector regression."),
    "word2vec-random-forest": Recipe(
        "word2vec + random forest",
        _word2vec(lambda: RandomForestRegressor(n_estimators=100, max_features="sqrt", random_state=SEED,
                                                n_jobs=-1), "forest"),
        "The same document vectors; a 100-tree random forest."),
    "tfidf-ridge": Recipe(
        "TF-IDF (words + bigrams) + ridge on log price",
        lambda: Pipeline([_texts(), ("tfidf", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)),
                          ("ridge", _log_price(Ridge(alpha=0.3)))]),
        "Sublinear TF-IDF of words and word pairs seen at least twice; ridge regression on log(1 + price)."),
    "tfidf-svd-boost": Recipe(
        "TF-IDF topics + course features + gradient boosting on log price",
        lambda: Pipeline([
            ("inputs", FeatureUnion([
                ("topics", Pipeline([_texts(), ("tfidf", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                                                                         max_features=30_000)),
                                     ("svd", TruncatedSVD(n_components=150, n_iter=2, random_state=SEED))])),
                ("features", FunctionTransformer(feature_matrix))])),
            ("boost", _log_price(HistGradientBoostingRegressor(max_iter=200, learning_rate=0.1, early_stopping=False,
                                                               random_state=SEED)))]),
        "The TF-IDF matrix cut to 150 latent topics (truncated SVD), next to the four course features "
        "(missing values left to the trees); histogram gradient boosting on log(1 + price)."),
}


def _plain(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    return type(value).__name__      # an estimator: its own parameters are listed separately


def describe(estimator) -> dict:
    """An estimator's full parameters as plain JSON values (no memory addresses): its identity."""
    params = estimator.get_params(deep=True)
    return {"class": type(estimator).__name__, **{k: _plain(v) for k, v in sorted(params.items())}}
