"""Extra ``lookalike compare`` rows for one library: query-time re-ranking and a learned projection.

- ``BACKBONE +aqe`` / ``+dba`` / ``+kreciprocal``: leave-one-out P@k and mAP@k of the same reduced
  vectors re-ranked at query time (:mod:`lookalike.evaluate.rerank`), exactly as search does it.
- ``BACKBONE +projection METHOD (held-out)``: a projection (``lookalike.reduce.project``: the
  metric-learning head or LDA, ``config.projection_method``) fitted on a seeded stratified half of the labelled images; the other half queries the first (the gallery).
  The row reports the projected P@k / mAP@k; its ``details`` also hold the same held-out protocol
  without the projection, the fair baseline.

Only P@k and mAP@k are measured for these rows (clustering, SVM and index size are the base row's).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from lookalike.evaluate.compare.measure import BackboneResult

if TYPE_CHECKING:
    from lookalike.evaluate.compare.settings import CompareConfig
    from lookalike.store.library_store import LibraryStore

PROJECTION_TEST_SIZE = 0.5


def option_rows(store: LibraryStore, config: CompareConfig, base: BackboneResult) -> list[BackboneResult]:
    """The re-ranking rows of ``config.rerank`` and, with ``config.projection``, the projection row."""
    from lookalike.classify.train import labelled_vectors
    from lookalike.evaluate.rerank import rerank_precision
    from lookalike.search.rerank import RerankConfig

    data = labelled_vectors(store)
    vectors, labels = np.asarray(data.vectors, dtype=np.float32), np.asarray(data.labels).astype(str)
    rows = []
    for method in config.rerank:
        row = _row(base, f"+{method}")
        started = time.perf_counter()
        scores = rerank_precision(vectors, labels, method, config.k, RerankConfig())
        row.seconds["rerank"] = round(time.perf_counter() - started, 2)
        row.precision_at_k, row.map_at_k = scores["precision_at_k"], scores["map_at_k"]
        rows.append(row)
    if config.projection:
        rows.append(_projection_row(base, vectors, labels, config))
    return rows


def _projection_row(base: BackboneResult, vectors: np.ndarray, labels: np.ndarray, config: CompareConfig) -> BackboneResult:
    from lookalike.evaluate.projection import heldout_projection_scores

    method = config.projection_method
    row = _row(base, f"+projection {method} (held-out)")
    started = time.perf_counter()
    scores = heldout_projection_scores(vectors, labels, config.k, test_size=PROJECTION_TEST_SIZE, seed=config.seed,
                                       method=method)  # fmt: skip
    row.seconds["projection"] = round(time.perf_counter() - started, 2)
    row.precision_at_k = scores["projected"]["precision_at_k"]
    row.map_at_k = scores["projected"]["map_at_k"]
    row.details["projection"] = scores
    row.notes.append(
        f"held-out: fitted on {scores['n_train']} images, scored on the other {scores['n_test']}; same split "
        f"without projection: P@{config.k} {scores['reduced']['precision_at_k']:.3f}"
    )
    return row


def _row(base: BackboneResult, suffix: str) -> BackboneResult:
    return BackboneResult(
        backbone=f"{base.backbone} {suffix}", library=base.library, n_images=base.n_images, dim=base.dim,
        reduced_dim=base.reduced_dim, images_per_second=base.images_per_second, speed_source=base.speed_source,
    )  # fmt: skip
