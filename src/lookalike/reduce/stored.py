"""A library's reducer and reduced vectors: fit once, keep current, reduce queries.

The reducer is fitted once (``refresh_reduced``; refitting is explicit) and stored in the
library; every embedded image's reduced vector is recomputed with the *stored* reducer when
images are added or removed. Queries (any image file) go through :func:`reduce_queries`, the
one place where a raw embedding becomes a vector comparable with the library's.
"""

from __future__ import annotations

import numpy as np

from lookalike.config import ReduceConfig, from_dict, to_dict
from lookalike.errors import InvalidParameterError
from lookalike.reduce.estimator import Reducer
from lookalike.store import reduced as files
from lookalike.store.library_store import LibraryStore
from lookalike.store.manifest import now

TRANSFORM_CHUNK = 16384


def reduce_config(store: LibraryStore) -> ReduceConfig | None:
    """The settings the stored reducer was fitted with (None before the first fit)."""
    section = store.manifest.sections.get("reduce")
    if section is None:
        return None
    return from_dict(ReduceConfig, section, where=f"{store.folder}/lookalike.toml [reduce]")


def stored_reducer(store: LibraryStore) -> Reducer | None:
    """The stored L2 + PCA reducer, or None before the first ``reduce``."""
    arrays = files.load_reducer_arrays(store.folder)
    return None if arrays is None else Reducer.from_arrays(arrays)


def fit_reducer(embeddings: np.ndarray, config: ReduceConfig) -> Reducer:
    """Fit L2 + PCA on ``embeddings`` (n, D); at least two rows."""
    if embeddings.shape[0] < 2:
        raise InvalidParameterError(
            f"need at least 2 embedded images to fit PCA, the library has {embeddings.shape[0]}"
        )
    return Reducer(config.n_components, whiten=config.whiten, renormalize=config.renormalize).fit(embeddings)


def transform_all(reducer: Reducer, embeddings: np.ndarray) -> np.ndarray:
    """Reduce (n, D) embeddings chunk by chunk (bounded memory): (n, d) float32."""
    out = np.empty((embeddings.shape[0], reducer.n_components_), dtype=np.float32)
    for start in range(0, embeddings.shape[0], TRANSFORM_CHUNK):
        out[start : start + TRANSFORM_CHUNK] = reducer.transform(embeddings[start : start + TRANSFORM_CHUNK])
    return out


def refresh_reduced(store: LibraryStore, config: ReduceConfig | None = None, *, refit: bool = False) -> Reducer:
    """Fit the reducer (first time, or ``refit``) and store every image's reduced vector.

    Without ``refit`` an existing reducer is kept and only applied to the current
    embeddings; asking for different settings then is an error that names ``--refit``.
    Refitting makes cluster runs and indexes built on the old reducer stale.
    """
    store.require_writable()
    stored = reduce_config(store)
    if config is not None and stored is not None and config != stored and not refit:
        raise InvalidParameterError(
            f"{store.folder}: PCA was fitted with {to_dict(stored)}; to use {to_dict(config)} "
            "refit it (`lookalike reduce --refit`), which makes clusters and indexes stale"
        )
    ids, embeddings = store.embeddings()
    reducer = None if refit else stored_reducer(store)
    if reducer is None:
        config = config or stored or ReduceConfig()
        reducer = fit_reducer(embeddings, config)
        files.save_reducer_arrays(store.folder, reducer.to_arrays())
        fitted = {"fingerprint": reducer.fingerprint, "dim": int(reducer.n_components_),
                  "fitted_on": int(embeddings.shape[0]), "fitted": now()}
        store.set_sections(reduce=to_dict(config), reducer=fitted)
    _store_reduced(store, reducer, ids, embeddings)
    return reducer


def reduced_vectors(store: LibraryStore) -> files.ReducedVectors:
    """Every embedded image's reduced vector, brought up to date with the stored reducer.

    Fits the default reducer on first use (writable libraries). A read-only library whose
    stored reduced vectors are out of date gets them computed in memory.
    """
    reducer = stored_reducer(store)
    if reducer is None:
        if store.readonly:
            raise InvalidParameterError(f"{store.folder}: no PCA yet; run `lookalike reduce` first")
        reducer = refresh_reduced(store)
    with store.catalog.snapshot():
        ids, _ = store.catalog.embedded_rows()
        key = files.reduced_key(reducer.fingerprint, files.embedding_state(np.asarray(ids), *store.raw_state()))
        committed = store.catalog.get_meta("reduced_key")
    if committed == key:
        stored_ids, vectors = files.read_reduced(store.folder, key)
        return files.ReducedVectors(stored_ids, vectors, reducer.fingerprint)
    ids_now, embeddings = store.embeddings()
    if store.readonly:
        return files.ReducedVectors(ids_now, transform_all(reducer, embeddings), reducer.fingerprint)
    return _store_reduced(store, reducer, ids_now, embeddings)


def require_reducer(store: LibraryStore) -> Reducer:
    """The stored reducer; a library without one is told which command fits it."""
    reducer = stored_reducer(store)
    if reducer is None:
        raise InvalidParameterError(
            f"{store.folder}: no PCA yet; run `lookalike reduce --library {store.folder}` first"
        )
    return reducer


def _store_reduced(
    store: LibraryStore, reducer: Reducer, ids: np.ndarray, embeddings: np.ndarray
) -> files.ReducedVectors:
    vectors = transform_all(reducer, embeddings)
    key = files.reduced_key(reducer.fingerprint, files.embedding_state(ids, *store.raw_state()))
    files.write_reduced(store.folder, key, ids, vectors)
    with store.catalog.transaction() as db:
        store.catalog.set_meta(db, "reduced_key", key)
    return files.ReducedVectors(ids, vectors, reducer.fingerprint)
