"""The measures of one ``lookalike compare`` row, taken on an open library.

:func:`measure_library` fills a :class:`BackboneResult`: PCA (refitted only when the settings or
the images changed), leave-one-out retrieval (:func:`lookalike.evaluate.retrieval.evaluate_library_retrieval`,
exact search), :func:`kmeans_scores`, :func:`svm_accuracy` and the exact FAISS index's size.

- :func:`svm_accuracy`: arrays in, scores out — an RBF SVM (:class:`lookalike.classify.estimator.VectorClassifier`)
  trained on a seeded stratified split and scored on the held-out part;
- :func:`kmeans_scores`: K-Means with a given K run through :meth:`Library.cluster` (stored like
  any run), or a stored run with the same settings on the same images and PCA reused.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lookalike.cluster.run import run_clustering
from lookalike.cluster.runs import list_runs
from lookalike.config import ClassifyConfig, ClusterConfig
from lookalike.errors import InvalidParameterError
from lookalike.progress import Progress
from lookalike.reduce.stored import reduce_config, refresh_reduced
from lookalike.store import images

if TYPE_CHECKING:
    import numpy as np

    from lookalike.evaluate.compare.settings import CompareConfig
    from lookalike.store.library_store import LibraryStore

SVM_CACHE_VERSION = 2
"""Part of the key of SVM results kept in a library's compare state; raise it when they change."""
FIXED_SVM = {"svm_C": (1.0,), "svm_gamma": (1.0,)}
"""The untuned SVM: C = 1 and gamma = scikit-learn's ``"scale"`` (scikit-learn's SVC defaults)."""


def svm_accuracy(vectors: np.ndarray, labels: np.ndarray, *, test_size: float = 0.25, seed: int = 0,
                 tune: bool = True) -> dict[str, Any]:
    """Held-out accuracy of an RBF SVM on ``vectors`` (n, d) with ``labels`` (n,).

    The split is :func:`lookalike.classify.estimator.stratified_split` (seeded, stratified). With ``tune``,
    C and gamma come from a 5-fold grid search on the training part only (``ClassifyConfig``'s
    grid); otherwise C = 1, gamma = ``"scale"``. Predictions are the classifier's (arg-max of its
    calibrated probabilities), as ``lookalike classify`` makes them.

    Returns
    -------
    JSON-ready dict: accuracy, balanced_accuracy, macro_f1 (of those predictions), svc_accuracy
    (the uncalibrated SVC's own ``predict`` with the same C and gamma), C, gamma_factor,
    cv_accuracy (None without tuning), tuned, n_train, n_test, test_indices_digest.
    """
    from lookalike.classify.estimator import VectorClassifier, classification_metrics, stratified_split

    train, test = stratified_split(labels, test_size=test_size, seed=seed)
    grid = {"svm_C": ClassifyConfig.svm_C, "svm_gamma": ClassifyConfig.svm_gamma} if tune else FIXED_SVM
    model = VectorClassifier("svm", seed=seed, cv=5, **grid).fit(vectors[train], labels[train])
    scores = classification_metrics(labels[test], model.predict(vectors[test]))
    best = model.best_params_
    cv = best.get("cv_accuracy")
    return {
        "accuracy": round(scores.accuracy, 4),
        "svc_accuracy": round(_plain_svc_accuracy(vectors, labels, train, test, best), 4),
        "balanced_accuracy": round(scores.balanced_accuracy, 4),
        "macro_f1": round(scores.macro_f1, 4),
        "C": best["C"],
        "gamma_factor": best["gamma_factor"],
        "cv_accuracy": None if cv is None else round(float(cv), 4),
        "tuned": tune,
        "n_train": int(train.size),
        "n_test": int(test.size),
        "test_indices_digest": _digest(test),
    }


def _plain_svc_accuracy(vectors: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray,
                        best: dict[str, Any]) -> float:
    """Accuracy of the uncalibrated SVC with the chosen C and gamma (its own ``predict``)."""
    from sklearn.svm import SVC

    model = SVC(kernel="rbf", C=best["C"], gamma=best["gamma"]).fit(vectors[train], labels[train])
    return float(model.score(vectors[test], labels[test]))


@dataclass
class BackboneResult:
    """One row of the comparison; ``error`` set (and metrics None) when the backbone failed."""

    backbone: str
    library: str
    error: str | None = None
    n_images: int = 0
    dim: int | None = None
    reduced_dim: int | None = None
    precision_at_k: float | None = None
    map_at_k: float | None = None
    nmi: float | None = None
    silhouette: float | None = None
    svm_accuracy: float | None = None
    images_per_second: float | None = None
    speed_source: str = "n/a"
    index_bytes: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def measure_library(
    store: LibraryStore, config: CompareConfig, state: dict[str, Any], result: BackboneResult, progress: Progress
) -> None:
    """Reduce, then the retrieval, clustering, classification and index measures of ``store``."""
    from lookalike.classify.train import labelled_vectors
    from lookalike.evaluate.retrieval import evaluate_library_retrieval

    fingerprint = _reduce(store, config, state, result)
    data = labelled_vectors(store)
    result.n_images = int(data.n_embedded)
    n_classes = len(set(data.labels.tolist()))
    progress.phase(f"measuring {result.backbone}", None)
    with _timed(result, "retrieval"):
        exact = evaluate_library_retrieval(
            store, config.k, kinds=("exact",), max_queries=max(result.n_images, 1), latency_queries=100,
            file_queries=0, seed=config.seed,
        )["kinds"]["exact"]  # fmt: skip
    result.precision_at_k, result.map_at_k = exact["precision_at_k"], exact["map_at_k"]
    result.details["retrieval"] = exact
    with _timed(result, "kmeans"):
        scores = kmeans_scores(store, n_classes, config.seed)
    result.nmi, result.silhouette = scores["nmi"], scores["silhouette"]
    result.details["kmeans"] = scores
    with _timed(result, "svm"):
        key = f"v{SVM_CACHE_VERSION}:{fingerprint}:{config.test_size}:{config.seed}:{config.svm_tune}"
        cached = state.setdefault("svm", {}).get(key)
        svm = cached or svm_accuracy(data.vectors, data.labels, test_size=config.test_size,
                                     seed=config.seed, tune=config.svm_tune)  # fmt: skip
        state["svm"] = {key: svm}
    result.svm_accuracy = svm["accuracy"]
    result.details["svm"] = {**svm, "reused": cached is not None}
    with _timed(result, "faiss_index"):
        result.index_bytes = exact_index_bytes(store)


def _reduce(store: LibraryStore, config: CompareConfig, state: dict[str, Any], result: BackboneResult) -> str:
    """Fit PCA when the settings or the embedded images changed; returns the reducer fingerprint."""
    from lookalike.search.library_index import ids_digest

    ids, embeddings = store.embeddings()
    if len(ids) < 2:
        raise InvalidParameterError(f"{store.folder}: {len(ids)} image(s) embedded; compare needs at least 2")
    wanted = config.reduce_config(len(ids), embeddings.shape[1])
    digest = ids_digest(ids)
    refit = reduce_config(store) != wanted or state.get("pca_fitted_on") != digest
    with _timed(result, "pca"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        reducer = refresh_reduced(store, wanted, refit=refit)
    result.notes += [str(w.message) for w in caught]
    if config.pca and wanted.n_components != config.pca:
        result.notes.append(f"PCA {config.pca} clamped to {wanted.n_components} = min(images - 1, embedding dim)")
    state["pca_fitted_on"] = digest
    result.reduced_dim = int(reducer.n_components_)
    result.details["pca"] = {"n_components": result.reduced_dim, "whiten": wanted.whiten, "refitted": refit,
                             "explained_variance": round(float(reducer.explained_variance_ratio_.sum()), 4)}
    result.details["raw_vector_bytes"] = int(embeddings.shape[0] * embeddings.shape[1] * 4)
    return str(reducer.fingerprint)


def exact_index_bytes(store: LibraryStore) -> int:
    """Bring the library's exact FAISS index up to date; the size of its file in bytes."""
    from lookalike.search.library_index import index_path, update_index

    record = update_index(store, "exact")
    return index_path(store.folder, record.kind, record.reducer).stat().st_size


def embedded_count(store: LibraryStore) -> int:
    """Images of ``store`` with a vector."""
    return images.embedded_count(store.catalog)


def kmeans_scores(store: LibraryStore, n_clusters: int, seed: int = 0) -> dict[str, Any]:
    """NMI, ARI and silhouette of a K-Means run with ``n_clusters`` on ``store``'s reduced vectors.

    A stored run with the same K and seed, built on the current PCA over the same number of
    images, is reused; otherwise a new run is stored. The scores are the run's own metrics
    (silhouette Euclidean, sampled above ``ClusterConfig.sample_size`` images).
    """
    n_images = embedded_count(store)
    reused = _matching_run(store, n_clusters, seed, n_images)
    info = reused or run_clustering(store, ClusterConfig(method="kmeans", n_clusters=n_clusters, seed=seed)).info
    external = info.metrics.get("external") or {}
    return {
        "run": info.id,
        "reused": reused is not None,
        "k": n_clusters,
        "nmi": _rounded(external.get("nmi")),
        "ari": _rounded(external.get("ari")),
        "silhouette": _rounded(info.metrics.get("silhouette")),
        "silhouette_sample_size": info.metrics.get("silhouette_sample_size"),
    }


def _matching_run(store: LibraryStore, n_clusters: int, seed: int, n_images: int) -> Any:
    for info in reversed(list_runs(store)):
        params = info.params
        if (not info.stale and info.method == "kmeans" and info.n_images == n_images
                and params.get("n_clusters") == n_clusters and params.get("seed") == seed):  # fmt: skip
            return info
    return None


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)


def _digest(indices: np.ndarray) -> str:
    from hashlib import sha256

    import numpy as np

    return sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()[:12]


class _timed:
    """``with _timed(result, "stage"):`` records the block's seconds in ``result.seconds``."""

    def __init__(self, result: BackboneResult, stage: str) -> None:
        self.result, self.stage = result, stage

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.result.seconds[self.stage] = round(time.perf_counter() - self.started, 2)
