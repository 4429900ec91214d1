"""Held-out evaluation: a *query* library scored against a *gallery* library.

Unlike the leave-one-out measures of :mod:`lookalike.evaluate.retrieval` and
:mod:`lookalike.classify.train`, the queries here are images the gallery has never seen (e.g. the
Fashion-MNIST test split against its training split). Both libraries must be built with the same
backbone and weights; the queries' raw embeddings are reduced with the **gallery's** stored
reducer (never refitted), so they live in the gallery's vector space. Nothing is written to either
library: indexes and classifiers are built in memory.

Which queries count. Queries without a label (or whose files disagree on one) are skipped and
counted; queries whose label no gallery image carries cannot have a relevant result (nor a
correct prediction): they are left out of the scores and counted per label.

- :func:`heldout_retrieval`: every scored query searches the gallery (exact by default; ``ivf`` /
  ``hnsw`` also report recall of the exact top k). Precision@j for j in 1, 5, k; recall@k and
  mAP@k, where the relevant count of a query is the number of gallery images with its label
  (definitions in :mod:`lookalike.evaluate.metrics`).
- :func:`heldout_classification`: a :class:`~lookalike.classify.estimator.VectorClassifier` trained on every
  labelled gallery vector, tested on the queries. With ``params="cv"`` the searched
  hyperparameters (SVM C/gamma, logreg C) are chosen by the classifier's k-fold grid search on a
  seeded stratified subsample of at most ``max_cv_samples`` gallery images, then fixed for one fit
  on all of them (an RBF SVM grid search over 60k images would take hours on 2 cores).
  ``probabilities=False`` (SVM only) fits a plain ``SVC`` instead of the calibrated one: one fit
  instead of ``calibration_folds + 1``, and labels from the SVC's own decision (one-vs-one votes)
  rather than the arg-max of calibrated probabilities.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.config import CLASSIFY_MODELS, ClassifyConfig
from lookalike.errors import BackboneMismatchError, InvalidParameterError
from lookalike.evaluate.metrics import label_hits, map_at_k, precision_at_k, recall_at_k, recall_vs_exact
from lookalike.reduce.stored import reduced_vectors, stored_reducer
from lookalike.store.labels import image_labels

if TYPE_CHECKING:
    from lookalike.classify.train import LabelledVectors
    from lookalike.store.library_store import LibraryStore

KINDS = ("exact", "ivf", "hnsw")
CUTOFFS = (1, 5, 10)
"""Precision is reported at these ranks (those <= k) and at k."""
MAX_CV_SAMPLES = 5000


@dataclass(frozen=True)
class HeldoutQueries:
    """The scored query images: ``ids`` (m,), ``vectors`` (m, d) in the gallery's reduced space,
    ``labels`` (m,) str; counts of the query images left out and why."""

    ids: np.ndarray
    vectors: np.ndarray
    labels: np.ndarray
    n_embedded: int
    n_unlabelled: int
    unknown_labels: dict[str, int]
    reducer_fingerprint: str

    def counts(self) -> dict[str, Any]:
        """JSON-ready counts: embedded, scored, unlabelled, unknown label (and which labels)."""
        return {
            "query_images": self.n_embedded, "queries_scored": int(self.ids.size),
            "queries_unlabelled": self.n_unlabelled,
            "queries_unknown_label": sum(self.unknown_labels.values()), "unknown_labels": self.unknown_labels,
        }


def check_compatible(gallery: LibraryStore, queries: LibraryStore) -> None:
    """Refuse a query library embedded by another backbone, weights or dimension than the gallery."""
    g, q = gallery.manifest.embed, queries.manifest.embed
    if (g.backbone, g.weights_sha256, g.dim) != (q.backbone, q.weights_sha256, q.dim):
        raise BackboneMismatchError(
            f"the query library {queries.folder} was built with backbone '{q.backbone}' (weights sha256 "
            f"{q.weights_sha256[:12]}…, {q.dim}-d), the gallery {gallery.folder} with '{g.backbone}' (weights "
            f"sha256 {g.weights_sha256[:12]}…, {g.dim}-d); held-out queries must come from the gallery's "
            f"backbone: index them with `lookalike index FOLDER --backbone {g.backbone} --labels folder`"
        )


def heldout_queries(gallery: LibraryStore, queries: LibraryStore, known_labels: set[str]) -> HeldoutQueries:
    """The labelled query images whose label is in ``known_labels``, reduced by the gallery's reducer."""
    from lookalike.reduce.stored import transform_all

    check_compatible(gallery, queries)
    reducer = stored_reducer(gallery)
    if reducer is None:
        raise InvalidParameterError(f"{gallery.folder}: the gallery has no PCA yet; run `lookalike reduce` on it first")
    ids, raw = queries.embeddings()
    labels_of = image_labels(queries.catalog).labels
    rows = [i for i, image in enumerate(ids.tolist()) if image in labels_of]
    labels = np.array([labels_of[int(ids[i])] for i in rows], dtype=str)
    known = np.isin(labels, sorted(known_labels))
    unknown = Counter(labels[~known].tolist())
    chosen = np.asarray(rows, dtype=np.int64)[known]
    return HeldoutQueries(
        ids=ids[chosen], vectors=transform_all(reducer, np.asarray(raw[chosen])), labels=labels[known],
        n_embedded=int(ids.size), n_unlabelled=int(ids.size) - len(rows),
        unknown_labels={name: unknown[name] for name in sorted(unknown)}, reducer_fingerprint=reducer.fingerprint,
    )


def _require_queries(q: HeldoutQueries, queries: LibraryStore) -> None:
    if q.ids.size == 0:
        raise InvalidParameterError(
            f"{queries.folder}: no query to score: {q.n_embedded} embedded images, {q.n_unlabelled} unlabelled, "
            f"{sum(q.unknown_labels.values())} with a label absent from the gallery "
            f"({', '.join(q.unknown_labels) or 'none'}); index the queries with `--labels folder`"
        )


# -- retrieval ------------------------------------------------------------------------------------
def gallery_scores(query_labels: Any, neighbor_ids: Any, gallery_labels: dict[int, str], k: int) -> dict[str, float]:
    """Precision@j (j in :data:`CUTOFFS` up to k, and k), recall@k and mAP@k of neighbour ids
    (m, k), -1 = no result; a query's relevant count is the number of gallery images with its label."""
    counts = Counter(gallery_labels.values())
    n_relevant = np.array([counts[label] for label in query_labels], dtype=np.int64)
    hits = label_hits(query_labels, neighbor_ids, gallery_labels)
    scores = {f"precision_at_{j}": precision_at_k(hits, j) for j in sorted({*[c for c in CUTOFFS if c <= k], k})}
    scores[f"recall_at_{k}"] = recall_at_k(hits, n_relevant, k)
    scores[f"map_at_{k}"] = map_at_k(hits, n_relevant, k)
    return scores


def heldout_retrieval(
    gallery: LibraryStore,
    queries: LibraryStore,
    k: int = 10,
    kind: str = "exact",
    *,
    nprobe: int | None = None,
    ef_search: int | None = None,
) -> dict[str, Any]:
    """Every scored query image searches the gallery's ``kind`` index (built in memory with the
    gallery's [index] settings): a JSON-ready report of scores, counts and timings."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidParameterError(f"k must be an integer >= 1, got {k!r}")
    if kind not in KINDS:
        raise InvalidParameterError(f"kind must be one of {KINDS}, got {kind!r}")
    reduced = reduced_vectors(gallery)
    g_ids, g_vectors = np.asarray(reduced.ids, dtype=np.int64), np.asarray(reduced.vectors)
    present = set(g_ids.tolist())
    g_labels = {i: label for i, label in image_labels(gallery.catalog).labels.items() if i in present}
    if not g_labels:
        raise InvalidParameterError(f"{gallery.folder}: the gallery has no labelled image (index it with `--labels folder`)")
    q = heldout_queries(gallery, queries, set(g_labels.values()))
    _require_queries(q, queries)
    report: dict[str, Any] = {
        "gallery": str(gallery.folder), "queries": str(queries.folder), "backbone": gallery.manifest.embed.backbone,
        "reducer_fingerprint": q.reducer_fingerprint, "k": k, "kind": kind,
        "gallery_images": int(g_ids.size), "gallery_labelled": len(g_labels),
        "gallery_labels": len(set(g_labels.values())), **q.counts(),
    }
    exact_ids = None
    for name in ("exact",) if kind == "exact" else ("exact", kind):
        options = (nprobe, ef_search) if name == kind else (None, None)
        nbr_ids, timing = _neighbours(gallery, name, (g_ids, g_vectors), q.vectors, k, options)
        if name == kind:
            report.update(gallery_scores(q.labels.tolist(), nbr_ids, g_labels, k))
            report.update(timing)
            if exact_ids is not None:
                report["recall_vs_exact"] = recall_vs_exact(nbr_ids, exact_ids)
        exact_ids = nbr_ids
    return report


def _neighbours(gallery: LibraryStore, kind: str, stored: tuple[np.ndarray, np.ndarray], queries: np.ndarray, k: int,
                options: tuple[int | None, int | None]) -> tuple[np.ndarray, dict[str, float]]:
    """Ids (m, k) of each query's k nearest gallery images (-1 padded), and build/search seconds;
    ``stored`` = gallery (ids (n,), vectors (n, d)), ``options`` = (nprobe, ef_search)."""
    from lookalike.index import create_index, search
    from lookalike.search.library_index import index_config

    ids, vectors = stored
    started = time.perf_counter()
    index = create_index(index_config(gallery, kind), n_vectors=len(ids)).fit(vectors, ids)
    built = time.perf_counter()
    found = search(index, queries, k, nprobe=options[0], ef_search=options[1])
    searched = time.perf_counter()
    out = np.full((len(found), k), -1, dtype=np.int64)
    for row, neighbours in zip(out, found):
        row[: len(neighbours)] = neighbours.ids
    return out, {"build_s": round(built - started, 3), "search_s": round(searched - built, 3)}


# -- classification -------------------------------------------------------------------------------
def heldout_classification(
    gallery: LibraryStore,
    queries: LibraryStore,
    model: str = "svm",
    params: dict[str, Any] | str | None = "cv",
    *,
    max_cv_samples: int = MAX_CV_SAMPLES,
    probabilities: bool = True,
    config: ClassifyConfig | None = None,
) -> dict[str, Any]:
    """Train ``model`` on every labelled gallery vector, test on the query images: a JSON-ready report.

    ``params``: ``"cv"`` (grid search on a stratified subsample of ``max_cv_samples``, then fixed),
    a dict of fixed :class:`~lookalike.classify.estimator.VectorClassifier` settings (e.g. ``{"svm_C": 10,
    "svm_gamma": 1}``), or None (the classifier's own grid search over all gallery images).
    ``config`` gives the grids, folds and seed (``ClassifyConfig`` defaults).
    """
    from lookalike.classify.estimator import PROBABILITIES, classification_metrics
    from lookalike.classify.train import labelled_vectors, usable

    if model not in CLASSIFY_MODELS:
        raise InvalidParameterError(f"model must be one of {CLASSIFY_MODELS}; got {model!r}")
    if not probabilities and model != "svm":
        raise InvalidParameterError(f"probabilities=False applies to the svm only; {model} has native probabilities")
    config = config or ClassifyConfig()
    data = usable(labelled_vectors(gallery), config, gallery.folder)
    q = heldout_queries(gallery, queries, set(data.labels.tolist()))
    _require_queries(q, queries)
    started = time.perf_counter()
    fixed, search = _hyperparameters(model, params, data, config, max_cv_samples)
    searched = time.perf_counter()
    predict, chosen = _fitted(model, fixed, data, config, probabilities)
    fitted = time.perf_counter()
    predicted = predict(q.vectors)
    done = time.perf_counter()
    metrics = classification_metrics(q.labels, predicted, np.unique(data.labels))
    return {
        "gallery": str(gallery.folder), "queries": str(queries.folder), "reducer_fingerprint": q.reducer_fingerprint,
        "model": model,
        "probabilities": PROBABILITIES[model] if probabilities else "none: plain SVC decision (one-vs-one votes)",
        "params": chosen, "search": search, "n_train": int(data.labels.size),
        "gallery_unlabelled": data.n_unlabelled, "dropped_classes": data.dropped_classes, **q.counts(),
        **metrics.to_dict(),
        "seconds": {"search": round(searched - started, 3), "fit": round(fitted - searched, 3),
                    "predict": round(done - fitted, 3)},
    }


def _hyperparameters(model: str, params: dict[str, Any] | str | None, data: LabelledVectors,
                     config: ClassifyConfig, max_cv_samples: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(fixed VectorClassifier settings, what the subsample search found or None)."""
    from lookalike.classify.train import configured_classifier, fixed_params

    if isinstance(params, dict):
        known = configured_classifier(model, config).get_params()
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise InvalidParameterError(f"unknown classifier settings {unknown}; expected some of {sorted(known)}")
        return dict(params), None
    if params is None or model not in ("svm", "logreg"):
        return {}, None
    if params != "cv":
        raise InvalidParameterError(f"params must be 'cv', a dict of classifier settings or None; got {params!r}")
    if isinstance(max_cv_samples, bool) or not isinstance(max_cv_samples, int) or max_cv_samples < 2:
        raise InvalidParameterError(f"max_cv_samples must be an integer >= 2, got {max_cv_samples!r}")
    rows = _subsample(data.labels, max_cv_samples, config.seed)
    chosen = configured_classifier(model, config).fit(data.vectors[rows], data.labels[rows])
    found = {**chosen.best_params_, "n_samples": int(rows.size)}
    return fixed_params(model, chosen.best_params_), found


def _subsample(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices of a seeded stratified subsample of at most ``size`` of ``labels`` (n,), sorted."""
    from lookalike.classify.estimator import stratified_split

    if labels.size <= size:
        return np.arange(labels.size)
    _, rows = stratified_split(labels, size / labels.size, seed)
    return rows


def _fitted(model: str, fixed: dict[str, Any], data: LabelledVectors, config: ClassifyConfig,
            probabilities: bool) -> tuple[Any, dict[str, Any]]:
    """(predict function of (m, d) vectors -> (m,) labels, the hyperparameters used)."""
    from lookalike.classify.train import configured_classifier

    if probabilities:
        classifier = configured_classifier(model, config, **fixed).fit(data.vectors, data.labels)
        return classifier.predict, dict(classifier.best_params_)
    C = np.atleast_1d(fixed.get("svm_C", config.svm_C)).tolist()
    factor = np.atleast_1d(fixed.get("svm_gamma", config.svm_gamma)).tolist()
    if len(C) != 1 or len(factor) != 1:
        raise InvalidParameterError(
            f"probabilities=False needs one svm_C and one svm_gamma (params='cv' or fixed values); got "
            f"svm_C={C}, svm_gamma={factor}"
        )
    return _plain_svm(float(C[0]), float(factor[0]), data)


def _plain_svm(C: float, factor: float, data: LabelledVectors) -> tuple[Any, dict[str, Any]]:
    """An uncalibrated RBF ``SVC`` (gamma = factor x scikit-learn's "scale") on one BLAS thread."""
    from sklearn.svm import SVC
    from threadpoolctl import threadpool_limits

    x = np.asarray(data.vectors, dtype=np.float32)
    variance = float(x.var())
    gamma = factor / (x.shape[1] * variance) if variance > 0 else factor
    classes, codes = np.unique(data.labels, return_inverse=True)
    with threadpool_limits(1, user_api="blas"):
        svc = SVC(kernel="rbf", C=C, gamma=gamma).fit(x, codes)

    def predict(vectors: np.ndarray) -> np.ndarray:
        with threadpool_limits(1, user_api="blas"):
            return classes[svc.predict(np.asarray(vectors, dtype=np.float32))]

    return predict, {"C": C, "gamma": gamma, "gamma_factor": factor,
                     "n_support": int(svc.n_support_.sum())}
