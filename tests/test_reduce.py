"""Reducer: L2 → PCA → L2, checked against scikit-learn's PCA."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.preprocessing import normalize

from lookalike.errors import InvalidParameterError
from lookalike.reduce import Reducer


def _embeddings(n: int = 600, d: int = 40, seed: int = 0) -> np.ndarray:
    """Positive-offset data with a clearly decaying spectrum (distinct eigenvalues)."""
    rng = np.random.default_rng(seed)
    scales = 3.0 * 0.85 ** np.arange(d)
    rotation, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (rng.standard_normal((n, d)) * scales) @ rotation + 5.0


def _sklearn_reference(x: np.ndarray, k: float, whiten: bool = False) -> PCA:
    return PCA(n_components=k, whiten=whiten, svd_solver="full").fit(normalize(x))


def test_matches_sklearn_pca() -> None:
    x = _embeddings()
    ours = Reducer(10).fit(x)
    ref = _sklearn_reference(x, 10)
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-4)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-4)
    cosines = np.abs(np.sum(ours.components_ * ref.components_, axis=1))
    np.testing.assert_allclose(cosines, 1.0, atol=1e-4)
    # Principal angles between the two subspaces are all ~0.
    singular = np.linalg.svd(ours.components_ @ ref.components_.T, compute_uv=False)
    np.testing.assert_allclose(singular, 1.0, atol=1e-4)


def test_transform_matches_sklearn_up_to_sign() -> None:
    x = _embeddings()
    reduced = Reducer(8).fit_transform(x)
    ref = normalize(_sklearn_reference(x, 8).transform(normalize(x)))
    signs = np.sign(np.sum(reduced * ref, axis=0))
    np.testing.assert_allclose(reduced, ref * signs, atol=1e-4)


def test_default_output_is_unit_length_float32() -> None:
    reduced = Reducer(8).fit_transform(_embeddings())
    assert reduced.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(reduced, axis=1), 1.0, atol=1e-5)


def test_variance_fraction_picks_same_count_as_sklearn() -> None:
    x = _embeddings()
    ours = Reducer(0.9).fit(x)
    ref = _sklearn_reference(x, 0.9)
    assert ours.n_components_ == ref.n_components_
    assert ours.explained_variance_ratio_.sum() >= 0.9


def test_whiten_gives_unit_variance_components() -> None:
    x = _embeddings()
    reduced = Reducer(6, whiten=True, renormalize=False).fit_transform(x)
    np.testing.assert_allclose(reduced.var(axis=0, ddof=1), 1.0, rtol=1e-3)
    ref = _sklearn_reference(x, 6, whiten=True).transform(normalize(x))
    np.testing.assert_allclose(np.abs(reduced), np.abs(ref), atol=1e-3)


def test_too_many_components_is_clamped_with_a_note() -> None:
    x = _embeddings(n=20, d=40)
    with pytest.warns(UserWarning, match="clamped to 20"):
        reducer = Reducer(256).fit(x)
    assert reducer.n_components_ == 20
    assert reducer.notes_ and "n_samples=20" in reducer.notes_[0]
    assert reducer.transform(x).shape == (20, 20)


def test_round_trip_through_savez(tmp_path: Path) -> None:
    x = _embeddings()
    reducer = Reducer(0.8, whiten=True).fit(x)
    path = tmp_path / "pca.npz"
    np.savez(path, **reducer.to_arrays())
    with np.load(path) as saved:
        loaded = Reducer.from_arrays(saved)
    assert loaded.fingerprint == reducer.fingerprint
    assert loaded.n_components == 0.8 and loaded.whiten
    np.testing.assert_array_equal(loaded.transform(x), reducer.transform(x))


def test_fingerprint_is_stable_and_tracks_state() -> None:
    x = _embeddings()
    first = Reducer(8).fit(x).fingerprint
    assert Reducer(8).fit(x.copy()).fingerprint == first
    assert Reducer(8).fit(x[:-1]).fingerprint != first
    assert Reducer(8, whiten=True).fit(x).fingerprint != first
    refitted = Reducer(8).fit(x)
    assert refitted.fingerprint == first  # remembered from here on ...
    refitted.fit(x[:-1])
    assert refitted.fingerprint == Reducer(8).fit(x[:-1]).fingerprint  # ... until the state changes
    refitted.whiten = True
    assert refitted.fingerprint == Reducer(8, whiten=True).fit(x[:-1]).fingerprint


def test_fit_does_not_copy_the_whole_matrix() -> None:
    x = _embeddings(n=60_000, d=64).astype(np.float32)
    tracemalloc.start()
    try:
        Reducer(16).fit(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * x.nbytes, f"fit peaked at {peak} bytes for a {x.nbytes}-byte input"


def test_from_arrays_refuses_incomplete_state() -> None:
    state = Reducer(4).fit(_embeddings()).to_arrays()
    del state["components"]
    with pytest.raises(InvalidParameterError, match="lacks \\['components'\\]"):
        Reducer.from_arrays(state)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (0, "must be >= 1"),
        (1.5, "in \\(0, 1\\)"),
        (0.0, "in \\(0, 1\\)"),
        ("64", "int >= 1"),
        (True, "int >= 1"),
    ],
    ids=["zero", "fraction-above-one", "fraction-zero", "string", "bool"],
)
def test_bad_n_components(value: object, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        Reducer(value).fit(_embeddings())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (np.empty((0, 8)), "0 point"),
        (np.ones((1, 8)), "1 point"),
        (np.ones(8), "2-D"),
        (np.full((10, 4), np.nan), "NaN or infinite values in 10 of 10 rows"),
        (np.ones((10, 4)), "identical"),
    ],
    ids=["empty", "one-point", "1-d", "nan", "identical"],
)
def test_bad_input_is_refused(data: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        Reducer(2).fit(data)


def test_transform_checks_fitted_and_dimension() -> None:
    with pytest.raises(InvalidParameterError, match="not fitted"):
        Reducer().transform(np.ones((3, 4)))
    reducer = Reducer(4).fit(_embeddings(d=40))
    with pytest.raises(InvalidParameterError, match="has 39 dimensions but this Reducer was fitted on 40"):
        reducer.transform(np.ones((3, 39)))


@pytest.mark.parametrize("k", [10, 0.9], ids=["int", "fraction"])
def test_fewer_samples_than_features_matches_sklearn(k: float) -> None:
    """n < d goes through the (n, n) Gram matrix; the result is still sklearn's PCA."""
    x = _embeddings(n=30, d=40)[:, :30] @ np.random.default_rng(1).standard_normal((30, 300))
    ours = Reducer(k).fit(x)
    ref = _sklearn_reference(x, k)
    assert ours.n_components_ == ref.n_components_
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-4)
    np.testing.assert_allclose(np.abs(np.sum(ours.components_ * ref.components_, axis=1)), 1.0, atol=1e-4)


def test_fewer_samples_than_features_clamped_components_stay_orthonormal() -> None:
    x = np.random.default_rng(2).random((12, 500))
    with pytest.warns(UserWarning, match="clamped to 12"):
        reducer = Reducer(64).fit(x)
    gram = reducer.components_ @ reducer.components_.T
    np.testing.assert_allclose(gram, np.eye(12), atol=1e-5)
    assert reducer.explained_variance_[-1] < 1e-9 * reducer.explained_variance_[0]  # centring: rank n - 1
