"""Label-free ways to better neighbours, measured on a library's stored raw vectors.

Every variant starts from the same raw embeddings and ends in leave-one-out P@k / mAP@k
(``lookalike.evaluate.retrieval.quality``, the rule ``lookalike compare`` uses); labels are only
read to score. Variants:

- ``plain``: L2 + PCA 256 (the library default), exact search; ``+aqe``, ``+dba``: re-ranked as
  ``search --rerank`` does (``lookalike.evaluate.rerank``);
- ``whiten``: PCA whitening (``Reducer(whiten=True)``);
- ``power``: signed power normalisation ``sign(x) |x|^0.5`` of the raw vectors before L2 + PCA;
- ``power diffusion``: diffusion on the mutual kNN graph (Iscen et al. 2017: k = 50, the query's
  5 nearest as seeds, alpha = 0.9, similarities cubed), solved densely (small sets only);
- ``power pseudo-lda``: the LDA projection (``lookalike.reduce.project.LabelProjector``) fitted
  on K-Means clusters of the library itself (K = n / 10) instead of labels.

Settings were chosen on Fashion-MNIST images 3000-5999 (tuning set). Against issue #14's
label-free target (+0.03 P@10 on Fashion-MNIST 3k, dogs vs cats, Tux Paint) none is enough: the
pseudo-label projection helps on 3,000 Fashion-MNIST images and hurts on smaller sets.

    python benchmarks/bench_label_free.py WORK/efficientnet-lite0.lookalike [...] --out bench-results/label_free.json
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from json_out import emit

K = 10
PCA = 256
POWER = 0.5
DIFFUSION = {"k": 50, "seeds": 5, "alpha": 0.9, "gamma": 3.0}
CLUSTER_SIZE = 10
MAX_DENSE = 6000


def library_vectors(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(raw vectors (n, D), labels (n,)) of the labelled embedded images of a library."""
    from lookalike.store.labels import image_labels
    from lookalike.store.library_store import LibraryStore

    store = LibraryStore.open(folder, readonly=True)
    try:
        ids, raw = store.embeddings()
        known = image_labels(store.catalog).labels
        keep = np.array([int(i) in known for i in ids], dtype=bool)
        labels = np.array([known[int(i)] for i in np.asarray(ids)[keep]])
        return np.asarray(raw, dtype=np.float32)[keep], labels
    finally:
        store.close()


def reduce(raw: np.ndarray, *, whiten: bool = False) -> np.ndarray:
    from lookalike.reduce.estimator import Reducer

    reducer = Reducer(n_components=min(PCA, raw.shape[0] - 1, raw.shape[1]), whiten=whiten).fit(raw)
    return np.asarray(reducer.transform(raw), dtype=np.float32)


def diffusion_neighbours(x: np.ndarray) -> np.ndarray:
    """(n, K) each row's best others by diffusion scores (dense inverse: n <= MAX_DENSE)."""
    from lookalike.search.rerank import neighbour_graph

    n, gamma = len(x), DIFFUSION["gamma"]
    rows, sims = neighbour_graph(x, int(DIFFUSION["k"]))
    affinity = np.zeros((n, n))
    np.put_along_axis(affinity, rows, np.maximum(sims, 0) ** gamma, axis=1)
    affinity = np.minimum(affinity, affinity.T)  # mutual neighbours only
    degree = np.sqrt(np.maximum(affinity.sum(axis=1), 1e-12))
    inverse = np.linalg.inv(np.eye(n) - DIFFUSION["alpha"] * affinity / degree[:, None] / degree[None, :])
    seeds = np.zeros((n, n))
    first = int(DIFFUSION["seeds"])
    np.put_along_axis(seeds, rows[:, :first], np.maximum(sims[:, :first], 0) ** gamma, axis=1)
    scores = seeds @ inverse.T
    np.fill_diagonal(scores, -np.inf)
    return np.argsort(-scores, axis=1)[:, :K]


def pseudo_label_projection(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """``x`` through LDA fitted on its own K-Means clusters (K = n / CLUSTER_SIZE)."""
    from sklearn.cluster import KMeans

    from lookalike.reduce.project import LabelProjector

    clusters = KMeans(max(2, len(x) // CLUSTER_SIZE), n_init=1, random_state=seed).fit_predict(x)
    with warnings.catch_warnings():  # one-image clusters: scikit-learn warns about their covariance
        warnings.simplefilter("ignore", UserWarning)
        return LabelProjector().fit(x, clusters.astype(str)).transform(x)


def measure(raw: np.ndarray, labels: np.ndarray) -> dict[str, dict[str, float]]:
    """P@K / mAP@K (and seconds) of every variant on one library's vectors."""
    from lookalike.evaluate.rerank import reranked_neighbours
    from lookalike.evaluate.retrieval import quality
    from lookalike.search.rerank import RerankConfig

    ids = np.arange(len(raw))
    by_id = {int(i): str(label) for i, label in zip(ids, labels)}
    plain, powered = reduce(raw), reduce(np.sign(raw) * np.abs(raw) ** POWER)
    pseudo: list[np.ndarray] = []  # the pseudo-label projection, fitted on first use

    def ranked(vectors: Any, method: str = "none") -> Any:
        return lambda: reranked_neighbours(vectors() if callable(vectors) else vectors, method, K, RerankConfig())

    def projected() -> np.ndarray:
        if not pseudo:
            pseudo.append(pseudo_label_projection(powered))
        return pseudo[0]

    variants: dict[str, Any] = {
        "plain": ranked(plain), "plain +aqe": ranked(plain, "aqe"), "plain +dba": ranked(plain, "dba"),
        "whiten": ranked(lambda: reduce(raw, whiten=True)),
        "power": ranked(powered), "power +aqe": ranked(powered, "aqe"), "power +dba": ranked(powered, "dba"),
        "power pseudo-lda": ranked(projected), "power pseudo-lda +aqe": ranked(projected, "aqe"),
    }  # fmt: skip
    if len(raw) <= MAX_DENSE:
        variants["power diffusion"] = lambda: diffusion_neighbours(powered)
    out = {}
    for name, neighbours in variants.items():
        started = time.perf_counter()
        scores = quality(ids, neighbours(), by_id, K)
        out[name] = {"precision_at_k": scores["precision_at_k"], "map_at_k": scores["map_at_k"],
                     "seconds": round(time.perf_counter() - started, 2)}  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("libraries", nargs="+", type=Path, help="library folders with labels (e.g. built by compare)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result = {"k": K, "pca": PCA, "power": POWER, "diffusion": DIFFUSION, "cluster_size": CLUSTER_SIZE, "libraries": {}}
    for folder in args.libraries:
        raw, labels = library_vectors(folder)
        result["libraries"][str(folder)] = {"n_images": len(raw), "variants": measure(raw, labels)}
    emit(result, args.out)


if __name__ == "__main__":
    main()
