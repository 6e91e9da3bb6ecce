"""The course's word2vec document vectors as a scikit-learn transformer (gensim underneath).

A document is the mean of its words' vectors (400 dimensions, window 5, every word kept),
trained on the task's train split. One worker and a fixed seed make the vectors the same on
every machine. The three word2vec baselines train on the same texts with the same settings,
so the trained vectors are cached by (texts hash, settings) and trained once, not thrice;
fitted pipelines store that key, not a copy of the vectors.
"""
from __future__ import annotations

import hashlib

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from harness.predictors.baselines.fitted_cache import cache_path, load_or_fit


def tokenize(text: str) -> list[str]:
    from gensim.utils import simple_preprocess

    return simple_preprocess(text)


def texts_hash(texts) -> str:
    h = hashlib.sha256()
    for text in texts:
        h.update(text.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


class Word2VecVectorizer(TransformerMixin, BaseEstimator):
    """Texts -> mean word2vec vector per text (zeros when no word is known)."""

    def __init__(self, vector_size: int = 400, window: int = 5, min_count: int = 1, epochs: int = 5,
                 seed: int = 42, workers: int = 1):
        self.vector_size, self.window, self.min_count = vector_size, window, min_count
        self.epochs, self.seed, self.workers = epochs, seed, workers

    def _train(self, docs):
        from gensim.models import Word2Vec

        model = Word2Vec(docs, vector_size=self.vector_size, window=self.window, min_count=self.min_count,
                         epochs=self.epochs, seed=self.seed, workers=self.workers)
        return model.wv

    def fit(self, X, y=None):
        texts = list(X)
        self.vectors_key_ = {"word2vec": self.get_params(), "texts": texts_hash(texts)}
        self.vectors_, _ = load_or_fit(self.vectors_key_, lambda: self._train([tokenize(t) for t in texts]),
                                       "word2vec-vectors")
        return self

    def transform(self, X):
        kv = self.vectors_
        out = np.zeros((len(X), self.vector_size), dtype=np.float32)
        for row, text in enumerate(X):
            words = [w for w in tokenize(text) if w in kv.key_to_index]
            if words:
                out[row] = kv[words].mean(axis=0)
        return out

    # Pickled pipelines keep only the key; the vectors live once in the fitted cache.
    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("vectors_", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "vectors_key_" in state:
            path = cache_path(self.vectors_key_, "word2vec-vectors")
            if not path.exists():   # the cache was pruned: the loader refits the whole pipeline
                raise FileNotFoundError(f"word vectors {path} are gone")
            import joblib

            self.vectors_ = joblib.load(path)
