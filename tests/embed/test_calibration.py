"""The calibration of an int8 library: stored images checked against the manifest's fingerprint,
and a library quantized by an older recipe told apart from one whose file was altered."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.embed.calibration import load_calibration, save_calibration
from lookalike.embed.reduced_precision import QUANT_FORMAT, calibration_fingerprint
from lookalike.errors import BackboneError


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)


def test_the_stored_images_come_back_when_the_fingerprint_matches(tmp_path, images):
    fingerprint = save_calibration(tmp_path, images)
    assert fingerprint == calibration_fingerprint(images)
    np.testing.assert_array_equal(load_calibration(tmp_path, fingerprint), images)


def test_a_library_quantized_by_an_older_recipe_is_refused_with_the_recipe(tmp_path, images):
    save_calibration(tmp_path, images)
    older = calibration_fingerprint(images, QUANT_FORMAT - 1)
    with pytest.raises(BackboneError, match=f"recipe {QUANT_FORMAT - 1}, and this lookalike quantizes with recipe {QUANT_FORMAT}"):
        load_calibration(tmp_path, older)


def test_altered_or_missing_images_are_refused_as_such(tmp_path, images):
    fingerprint = save_calibration(tmp_path, images)
    save_calibration(tmp_path, images[::-1].copy())
    with pytest.raises(BackboneError, match="calibration images changed"):
        load_calibration(tmp_path, fingerprint)
    with pytest.raises(BackboneError, match="not calibrated yet"):
        load_calibration(tmp_path / "elsewhere", fingerprint)
