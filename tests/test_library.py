"""The Library facade: create/open/add/remove/embeddings, incremental and resumable indexing.

These tests use the deterministic ``pixels`` backbone so they run in seconds; the pretrained
backbones are exercised in tests/embed and the slow end-to-end test at the bottom.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from lookalike import Library
from lookalike.config import ExtractConfig
from lookalike.errors import (
    BackboneMismatchError,
    InvalidParameterError,
    LibraryExistsError,
    LibraryLockedError,
    LibraryNotFoundError,
)
from lookalike.io.decode import load_model_input
from tests.imagegen import make_image, write_images


def create(tmp_path, name="lib.lookalike"):
    return Library.create(tmp_path / name, backbone="pixels")


def catalog_rows(lib):
    return lib.catalog.query("SELECT path, status, reason, label FROM catalog ORDER BY path")


def test_add_embeds_every_image_and_matches_the_backbone(tmp_path):
    paths = write_images(tmp_path / "photos", 5)
    with create(tmp_path) as lib:
        report = lib.add([tmp_path / "photos"])
        ids, vectors = lib.embeddings()
        assert report.embedded == 5 and report.sync.new_files == 5
        assert vectors.shape == (5, lib.manifest.embed.dim)
        # each stored vector is the backbone's output for that file
        spec = lib.manifest.embed
        for image_id, vector in zip(ids, vectors):
            (path,) = lib.catalog.query("SELECT path FROM files WHERE image_id = ?", (int(image_id),))[0]
            pixels = load_model_input(path, size=spec.image_size, crop_fraction=spec.crop_fraction,
                                      max_pixels=10**8)
            np.testing.assert_allclose(vector, lib.backbone().embed(pixels[None])[0], rtol=1e-6)
        assert sorted(str(p) for p in paths) == [r[0] for r in catalog_rows(lib)]


def test_identical_files_are_embedded_once_and_every_path_is_kept(tmp_path):
    write_images(tmp_path / "a", 3)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    with create(tmp_path) as lib:
        report = lib.add([tmp_path / "a", tmp_path / "b"])
        status = lib.status()
    assert report.embedded == 3
    assert (status.files, status.images, status.duplicate_files) == (6, 3, 3)
    assert report.sync.duplicate_files == 3


def test_reindex_is_incremental_and_drops_vanished_files(tmp_path):
    photos = tmp_path / "photos"
    paths = write_images(photos, 4)
    with create(tmp_path) as lib:
        lib.add([photos])
        _, before = lib.embeddings()
        before = np.array(before)
        second = lib.add()  # the library remembers its folders
        assert (second.embedded, second.sync.unchanged_files) == (0, 4)

        paths[0].unlink()                                   # vanished
        make_image(100).save(paths[1])                      # changed content
        os.utime(paths[1], ns=(1, 1))
        write_images(photos, 1, start=200)                  # new
        third = lib.add()
        ids, after = lib.embeddings()
    assert third.sync.removed_files == 1
    assert third.sync.changed_files == 1 and third.sync.new_files == 1
    assert third.embedded == 2
    assert after.shape[0] == 4
    # the untouched images kept their vectors
    for row in before[2:]:
        assert np.any(np.all(np.isclose(after, row), axis=1))


def test_labels_from_class_subfolders(tmp_path):
    write_images(tmp_path / "data" / "cats", 2)
    write_images(tmp_path / "data" / "dogs", 2, start=10)
    write_images(tmp_path / "data", 1, start=20)  # top level: no label
    with create(tmp_path) as lib:
        lib.add([tmp_path / "data"], labels="folder")
        labels = sorted((r[3] or "-") for r in catalog_rows(lib))
    assert labels == ["-", "cats", "cats", "dogs", "dogs"]


def test_remove_forgets_files_and_their_vectors(tmp_path):
    write_images(tmp_path / "data" / "keep", 2)
    write_images(tmp_path / "data" / "drop", 3, start=10)
    with create(tmp_path) as lib:
        lib.add([tmp_path / "data"])
        assert lib.remove([tmp_path / "data" / "drop"]) == 3
        ids, vectors = lib.embeddings()
        assert len(ids) == vectors.shape[0] == 2
        assert lib.status().files == 2
    assert (tmp_path / "data" / "drop").exists()  # nothing deleted on disk


class Crash(Exception):
    pass


def test_a_crash_mid_run_resumes_without_embedding_twice(tmp_path, monkeypatch):
    write_images(tmp_path / "photos", 40)
    extract = ExtractConfig(batch_size=4, commit_every=8, decode_workers=2)
    with create(tmp_path) as lib:
        backbone = lib.backbone(threads=extract.runtime_threads())  # the one add() will use
        real_embed = backbone.embed_with_classes
        calls = {"n": 0}

        def failing_embed(batch):
            calls["n"] += 1
            if calls["n"] == 5:
                raise Crash()
            return real_embed(batch)

        monkeypatch.setattr(backbone, "embed_with_classes", failing_embed)
        with pytest.raises(Crash):
            lib.add([tmp_path / "photos"], extract=extract)
        monkeypatch.setattr(backbone, "embed_with_classes", real_embed)
        committed = lib.status().embedded
        assert committed == 16  # two commits of 8 survived; the rest is pending
        report = lib.add(extract=extract)
        status = lib.status()
        rows = int(lib.catalog.get_meta("raw_rows"))
    assert report.embedded == 40 - committed
    assert status.embedded == 40 and status.pending == 0
    assert rows == 40  # no row written twice


def test_opening_with_another_backbone_is_refused(tmp_path):
    create(tmp_path).close()
    with pytest.raises(BackboneMismatchError, match="built with backbone 'pixels', not 'mobilenetv2'"):
        Library.open(tmp_path / "lib.lookalike", backbone="mobilenetv2")


def test_changed_weights_are_refused(tmp_path):
    create(tmp_path).close()
    manifest = tmp_path / "lib.lookalike" / "lookalike.toml"
    text = manifest.read_text()
    sha = text.split('weights_sha256 = "')[1].split('"')[0]
    manifest.write_text(text.replace(sha, "0" * 64))
    write_images(tmp_path / "p", 1)
    with Library.open(tmp_path / "lib.lookalike") as lib:
        with pytest.raises(BackboneMismatchError, match="weights sha256"):
            lib.add([tmp_path / "p"])


def test_create_refuses_existing_library_and_open_refuses_missing(tmp_path):
    create(tmp_path).close()
    with pytest.raises(LibraryExistsError, match="already exists"):
        create(tmp_path)
    with pytest.raises(LibraryNotFoundError, match="no library here"):
        Library.open(tmp_path / "nothing")


def test_second_writer_is_refused_but_readers_are_not(tmp_path):
    with create(tmp_path):
        with pytest.raises(LibraryLockedError, match="another lookalike process"):
            Library.open(tmp_path / "lib.lookalike")
        with Library.open(tmp_path / "lib.lookalike", readonly=True) as reader:
            assert reader.status().files == 0


def test_bad_arguments_are_clear_errors(tmp_path):
    with create(tmp_path) as lib:
        with pytest.raises(InvalidParameterError, match="no folders to index"):
            lib.add()
        with pytest.raises(InvalidParameterError, match="no such file or folder"):
            lib.add([tmp_path / "missing"])
        with pytest.raises(InvalidParameterError, match="labels must be one of"):
            lib.add([tmp_path], labels="csv")


def test_compaction_after_removals_keeps_every_vector_with_its_image(tmp_path):
    write_images(tmp_path / "data" / "keep", 3)
    write_images(tmp_path / "data" / "drop", 5, start=10)
    with create(tmp_path) as lib:
        lib.add([tmp_path / "data"])
        ids_before, vectors_before = lib.embeddings()
        by_id = {int(i): np.array(v) for i, v in zip(ids_before, vectors_before)}
        lib.remove([tmp_path / "data" / "drop"])  # 5 of 8 rows become holes: compacts
        ids, vectors = lib.embeddings()
        assert isinstance(vectors, np.memmap)  # contiguous again: mapped, not copied
        assert int(lib.catalog.get_meta("raw_generation")) == 1
        for image_id, vector in zip(ids, vectors):
            np.testing.assert_array_equal(vector, by_id[int(image_id)])
        assert not lib.compact()  # nothing left to reclaim
    with Library.open(tmp_path / "lib.lookalike") as lib:  # next writer sweeps the old file
        assert [p.name for p in (lib.folder / "vectors").iterdir()] == ["raw-1.f32"]


def test_each_image_gets_a_perceptual_hash_of_its_upright_pixels(tmp_path):
    from lookalike.embed.phash import phash
    from lookalike.io.decode import load_rgb
    from lookalike.store.catalog import from_signed64

    write_images(tmp_path / "p", 3)
    with create(tmp_path) as lib:
        lib.add([tmp_path / "p"])
        rows = lib.catalog.query("SELECT path, phash FROM catalog JOIN images i ON i.id = catalog.image_id")
    assert len(rows) == 3
    for path, stored in rows:
        assert from_signed64(stored) == phash(load_rgb(path, max_pixels=10**8))
