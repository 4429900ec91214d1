"""Honest evaluation of the learned label projection (``lookalike.reduce.project``: LDA or the head)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lookalike.reduce.project import DEFAULT_METHOD, make_projector


def heldout_projection_scores(
    vectors: np.ndarray, labels: np.ndarray, k: int = 10, test_size: float = 0.5, seed: int = 0,
    method: str = DEFAULT_METHOD,
) -> dict[str, Any]:
    """Honest score of a learned projection: fitted on a stratified train split only.

    The held-out images query the training images (the gallery), both before (reduced vectors)
    and after the projection (``method``: ``lda`` or ``head``, seeded with ``seed``). Returns
    JSON-ready P@k / mAP@k of both, the split sizes, the method and the projected dimension.
    """
    from lookalike.classify.estimator import stratified_split
    from lookalike.evaluate.holdout import gallery_scores

    labels = np.asarray(labels).astype(str)
    train, test = stratified_split(labels, test_size=test_size, seed=seed)
    projector = make_projector(method, seed=seed).fit(vectors[train], labels[train])
    gallery = {int(i): labels[i] for i in train}
    out: dict[str, Any] = {"n_train": int(train.size), "n_test": int(test.size), "method": method,
                           "dim": int(projector.n_features_out_)}  # fmt: skip
    for name, space in (("reduced", vectors), ("projected", projector.transform(vectors))):
        sims = space[test] @ space[train].T
        top = train[np.argsort(-sims, axis=1, kind="stable")[:, :k]]
        scores = gallery_scores(labels[test].tolist(), top, gallery, k)
        out[name] = {"precision_at_k": round(scores[f"precision_at_{k}"], 4), "map_at_k": round(scores[f"map_at_{k}"], 4)}
    return out
