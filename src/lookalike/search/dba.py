"""The library's DBA vectors: computed from the reduced vectors, stored, updated incrementally.

:func:`library_dba` returns every embedded image's DBA vector (see :mod:`lookalike.search.rerank`).
The set is stored beside the reduced vectors (:mod:`lookalike.store.dba`) under the reduced key,
so it is current exactly when the reduced vectors are. When images were added or removed since
the last stored set (same reducer), only the rows whose neighbourhood changed are recomputed
(:func:`lookalike.search.rerank.update_dba`); a refitted reducer recomputes everything. Read-only
libraries compute a missing set in memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lookalike.reduce.stored import reduced_vectors
from lookalike.search.rerank import RerankConfig, update_dba
from lookalike.store.dba import dba_folder, latest_dba, read_dba, remove_other_dba, write_dba

if TYPE_CHECKING:
    from lookalike.store.library_store import LibraryStore


def library_dba(store: LibraryStore, config: RerankConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(image ids (n,), DBA vectors (n, d)) of the library's current reduced vectors."""
    config = config or RerankConfig()
    reduced = reduced_vectors(store)
    ids, vectors = np.asarray(reduced.ids, dtype=np.int64), np.asarray(reduced.vectors, dtype=np.float32)
    key = store.catalog.get_meta("reduced_key") or "memory"
    settings = f"n{config.dba_n}a{config.dba_alpha:g}"
    target = dba_folder(store.folder, key, settings)
    stored = read_dba(target)
    if stored is not None and np.array_equal(stored[0], ids):
        return stored[0], stored[1]
    previous = latest_dba(store.folder, reduced.reducer_fingerprint, settings)
    if previous is None:
        previous = (np.zeros(0, np.int64), np.zeros((0, vectors.shape[1]), np.float32), np.zeros((0, 0), np.int64))
    augmented, neighbours = update_dba(previous, ids, vectors, config.dba_n, config.dba_alpha)
    if not store.readonly:
        write_dba(target, ids, augmented, neighbours)
        remove_other_dba(store.folder, target)
    return ids, augmented
