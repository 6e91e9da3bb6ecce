"""`baseline:knn` and `baseline:knn-weighted`: an item's price from its k nearest train items alone.

The retrieval-augmented prompt (`--shots K --shot-selector nearest`) shows a model its item's k
nearest train items and their prices; these baselines answer from those very neighbours without
a model: their median price (`knn`), or their mean weighted by the retriever's similarity
(`knn-weighted`: cosine for tfidf and embeddings, the BM25 score for bm25). Beside a model's
row they show what the model adds over copying its neighbours. k and the retriever are the
run's in-context setting, so `baseline:knn --shots 5 --shot-selector nearest --retriever
embeddings` sees exactly what the 5-shot embeddings prompt shows.
"""
from __future__ import annotations

import statistics

from harness.errors import InputError
from harness.kinds import known_kind
from harness.predictors.base import Predictor, Reply

KNN = {"knn": ("kNN: median price of the k nearest train items", "median"),
       "knn-weighted": ("kNN: similarity-weighted mean price of the k nearest train items", "similarity-weighted mean")}
KNN_VERSION = 1


class KNNPredictor(Predictor):
    kind = known_kind("baseline")
    default_prompt = "base"
    batch_size = 1000
    quants = ("none",)
    quant_advice = "a kNN baseline has no quantization to choose; drop --quant"
    prompts = (None,)
    prompt_advice = "a kNN baseline reads the neighbours, not a prompt; drop --prompt"
    reads_prompt = False            # no tokenizer cut, no prompt ...
    reads_shots = True              # ... but the in-context examples (runner: check_reader)

    class Options(Predictor.Options):
        unknown_advice = "k and the retriever are the run's --shots and --retriever: it takes no model options"

    def __init__(self, spec):
        super().__init__(spec)
        self.name = spec.target

    def identity(self, task) -> dict:
        ic = task.in_context
        if not (ic.active and ic.selector == "nearest"):
            raise InputError(f"{self.spec.name} prices an item from its nearest train items: give --shots K "
                             f"--shot-selector nearest (and --retriever tfidf | bm25 | embeddings)", field="shots")
        return {"baseline": self.name, "aggregate": KNN[self.name][1], "version": KNN_VERSION}

    def label(self) -> str:
        return KNN[self.name][0]

    def predict_batch(self, requests):
        replies = []
        for request in requests:
            prices = [shot.item.price for shot in request.shots]
            if self.name == "knn":
                price = float(statistics.median(prices))
            else:
                weights = [max(shot.score or 0.0, 0.0) for shot in request.shots]
                total = sum(weights)
                price = sum(p * w for p, w in zip(prices, weights)) / total if total > 0 else statistics.fmean(prices)
            replies.append(Reply(raw=f"{price:.2f}", price=price))
        return replies

    def run_info(self) -> dict:
        return {"label": self.label(), "kind": self.kind, "baseline": self.name}
