"""The raw-pixels baseline backbone and the ImageNet class names / top-k helper."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.embed.imagenet import imagenet_classes, softmax, top_k_classes
from lookalike.embed.registry import load_backbone
from lookalike.errors import BackboneError, InvalidParameterError


@pytest.fixture()
def batch() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)


def test_pixels_embedding_equals_numpy_reference(batch: np.ndarray) -> None:
    backbone = load_backbone("pixels")
    got = backbone.embed(batch)
    reference = batch.astype(np.float64).reshape(5, 32 * 32 * 3) / 255.0
    assert got.dtype == np.float32 and got.shape == (5, 3072)
    np.testing.assert_array_equal(got, reference.astype(np.float32))
    assert got[2, 3 * (32 * 4 + 5) + 1] == np.float32(batch[2, 4, 5, 1] / 255.0)  # (row, col, channel) order


def test_pixels_is_deterministic_and_row_independent(batch: np.ndarray) -> None:
    backbone = load_backbone("pixels")
    whole = backbone.embed(batch)
    np.testing.assert_array_equal(whole[1:2], backbone.embed(batch[1:2]))
    assert backbone.weights_sha256 == load_backbone("pixels").weights_sha256
    assert len(backbone.weights_sha256) == 64


def test_pixels_empty_batch() -> None:
    assert load_backbone("pixels").embed(np.zeros((0, 32, 32, 3), np.uint8)).shape == (0, 3072)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((2, 32, 32, 3), np.float32), "dtype must be uint8"),
        (np.zeros((2, 64, 64, 3), np.uint8), r"shape \(N, 32, 32, 3\), got \(2, 64, 64, 3\)"),
        (np.zeros((32, 32, 3), np.uint8), r"got \(32, 32, 3\)"),
        ([[0]], "numpy array"),
    ],
    ids=["float", "wrong-size", "no-batch-axis", "list"],
)
def test_pixels_rejects_bad_batches(bad: np.ndarray, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        load_backbone("pixels").embed(bad)


def test_pixels_has_no_classifier(batch: np.ndarray) -> None:
    with pytest.raises(BackboneError, match="no ImageNet classifier"):
        load_backbone("pixels").predict_classes(batch)


def test_pixels_manifest_records_spec_and_hash() -> None:
    record = load_backbone("pixels").manifest()
    assert record["name"] == "pixels" and record["dim"] == 3072 and len(record["weights_sha256"]) == 64


def test_imagenet_names() -> None:
    names = imagenet_classes()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert names[:2] == ("tench", "goldfish")
    assert names[281:286] == ("tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat")


def test_top_k_matches_argsort_reference() -> None:
    logits = np.random.default_rng(3).normal(size=(4, 1000)) * 3
    result = top_k_classes(logits, top_k=3)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    names = imagenet_classes()
    for row, ranked in zip(probs, result):
        best = np.argsort(row)[::-1][:3]
        assert [name for name, _ in ranked] == [names[i] for i in best]
        np.testing.assert_allclose([p for _, p in ranked], row[best], rtol=1e-12)
    np.testing.assert_allclose(softmax(logits).sum(axis=1), 1.0)


@pytest.mark.parametrize("top_k", [0, 1001])
def test_top_k_range(top_k: int) -> None:
    with pytest.raises(InvalidParameterError, match="top_k"):
        top_k_classes(np.zeros((1, 1000)), top_k=top_k)
