"""A library's learned label projection (``lookalike learn-projection``): fit, store, load.

The projection (``lookalike.reduce.project``: LDA or the metric-learning head) is fitted on the
library's labelled reduced vectors and stored with the fingerprint of the reducer they came from. Like a classifier,
it is *stale* once the PCA is refitted: :func:`library_projection` then refuses with an error
naming both fingerprints and the command that fixes it. Images added later are projected with
the stored map (no refit needed); relearn it when the labels change much.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.errors import InvalidParameterError, StaleModelError
from lookalike.reduce.project import DEFAULT_METHOD, Projector, make_projector, projector_from_arrays
from lookalike.reduce.stored import reduced_vectors, stored_reducer
from lookalike.store.labels import image_labels
from lookalike.store.projection import load_projection, save_projection

if TYPE_CHECKING:
    from lookalike.progress import Progress
    from lookalike.store.library_store import LibraryStore


def learn_projection(
    store: LibraryStore, method: str = DEFAULT_METHOD, *, beta: float = 1.0, shrinkage: float = 0.05,
    seed: int = 0, progress: Progress | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Fit the projection (``method``: ``lda`` with ``beta`` and ``shrinkage``, or ``head`` seeded by
    ``seed``) on every labelled image of ``store`` and store it; a JSON-ready summary."""
    reduced = reduced_vectors(store)
    labels = image_labels(store.catalog).labels
    ids = np.asarray(reduced.ids, dtype=np.int64)
    rows = np.array([i for i, image in enumerate(ids.tolist()) if image in labels], dtype=np.int64)
    if rows.size == 0:
        raise InvalidParameterError(f"{store.folder}: no labelled image to learn a projection from (index with `--labels folder`)")
    y = np.array([labels[int(ids[i])] for i in rows], dtype=str)
    projector = make_projector(method, seed=seed, beta=beta, shrinkage=shrinkage)
    projector.fit(np.asarray(reduced.vectors)[rows], y, progress=progress)
    save_projection(store.folder, projector.to_arrays(), reduced.reducer_fingerprint, int(rows.size))
    settings = {"beta": beta, "shrinkage": shrinkage} if method == "lda" else {"seed": seed}
    return {"library": str(store.folder), "method": method, "images": int(rows.size),
            "classes": int(projector.classes_.size), "dim": projector.n_features_out_, **settings,
            "reducer": reduced.reducer_fingerprint}  # fmt: skip


def library_projection(store: LibraryStore) -> Projector:
    """The stored projection; an error when there is none or the PCA was refitted since."""
    stored = load_projection(store.folder)
    if stored is None:
        raise InvalidParameterError(f"{store.folder}: no learned projection; run `lookalike learn-projection --library {store.folder}`")
    reducer = stored_reducer(store)
    fitted_on = str(stored["reducer"])
    if reducer is None or reducer.fingerprint != fitted_on:
        now = None if reducer is None else reducer.fingerprint
        raise StaleModelError(
            f"{store.folder}: the projection was learned on PCA {fitted_on}, the library's PCA is now {now}; "
            f"learn it again: `lookalike learn-projection --library {store.folder}`"
        )
    return projector_from_arrays(stored)
