"""Library-level search: queries of every kind, filters, scores, and the stored index kept in
agreement with the catalog (incremental updates, readers during writes, kills, PCA refits)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from lookalike import Library
from lookalike.config import ReduceConfig
from lookalike.errors import InvalidParameterError, UnreadableFileError
from lookalike.index import MatchCalibrator
from lookalike.index.scores import isotonic_fit
from lookalike.search.library_index import index_path, read_record, update_index, update_stored_indexes
from lookalike.search.searcher import Searcher, SearchFilters
from tests.searchlib import (
    add_cluster_run,
    brute_force,
    build,
    class_image,
    image_id_of,
    vector_of,
    write_labelled,
)


@pytest.fixture
def lib(tmp_path):
    library = build(tmp_path)
    yield library
    library.close()


def ids_of(result):
    return [h.image_id for h in result.hits]


def test_query_by_library_image_matches_brute_force_and_leaves_itself_out(lib):
    own = int(lib.reduced().ids[5])
    result = lib.search(own, k=7)
    expected, sims = brute_force(lib, vector_of(lib, own), 7, exclude=(own,))
    assert ids_of(result) == expected and result.query_images == [own]
    np.testing.assert_allclose([h.similarity for h in result.hits], sims, atol=1e-5)
    for h in result.hits:
        assert h.distance == pytest.approx(2 - 2 * h.similarity, abs=1e-5)
        assert 0.0 <= h.confidence <= 1.0 and 0.0 <= h.probability <= 1.0
    first = lib.search(own, k=1, include_self=True).hits[0]
    assert first.image_id == own and first.similarity == pytest.approx(1.0, abs=1e-5)


def test_files_and_bytes_already_in_the_library_use_their_stored_vector(lib, tmp_path):
    path = sorted((tmp_path / "photos" / "green").iterdir())[3]
    own = image_id_of(lib, path)
    by_path, by_bytes = lib.search(path, k=5), lib.search(path.read_bytes(), k=5)
    copy = tmp_path / "elsewhere.png"
    shutil.copy(path, copy)  # same content, not a library file: found by content hash
    assert by_path.query_images == by_bytes.query_images == lib.search(copy, k=5).query_images == [own]
    assert ids_of(by_path) == ids_of(by_bytes) == brute_force(lib, vector_of(lib, own), 5, exclude=(own,))[0]
    assert by_path.hits[0].path.startswith(str(tmp_path / "photos"))


def test_a_new_image_is_embedded_with_the_library_backbone_and_pca(lib, tmp_path):
    from lookalike.io.decode import load_model_input

    query = tmp_path / "new.jpg"
    class_image(1, 999).save(query, quality=90)
    result = lib.search(query, k=6)
    spec = lib.manifest.embed
    pixels = load_model_input(query, size=spec.image_size, crop_fraction=spec.crop_fraction, max_pixels=10**8)
    vector = lib.reducer().transform(lib.backbone().embed(pixels[None]))[0]
    assert result.query_images == [] and ids_of(result) == brute_force(lib, vector, 6)[0]
    assert {h.label for h in result.hits[:3]} == {"green"}
    assert result.seconds["decode"] > 0 and result.seconds["embed"] > 0


def test_a_result_as_a_dict_is_what_dataclasses_asdict_gives(lib):
    from dataclasses import asdict

    result = lib.search(3, k=5)
    assert len(result.hits) == 5
    assert result.to_dict() == asdict(result)


def test_several_queries_search_with_their_mean(lib):
    ids = [int(i) for i in lib.reduced().ids[:3]]
    mean = np.mean([vector_of(lib, i) for i in ids], axis=0)
    result = lib.search(ids, k=4)
    assert ids_of(result) == brute_force(lib, mean, 4, exclude=tuple(ids))[0]
    assert sorted(result.query_images) == sorted(ids)


def test_bad_queries_are_clear_errors(lib, tmp_path):
    with pytest.raises(UnreadableFileError, match="file not found"):
        lib.search(tmp_path / "missing.png")
    with pytest.raises(InvalidParameterError, match="image id 99999 is not an embedded image"):
        lib.search(99999)
    with pytest.raises(InvalidParameterError, match="the query is empty"):
        lib.search([])
    with pytest.raises(InvalidParameterError, match="nprobe"):
        lib.search(int(lib.reduced().ids[0]), kind="exact", nprobe=4)


def test_label_and_path_filters_restrict_results_like_brute_force_on_the_subset(lib, tmp_path):
    own = image_id_of(lib, sorted((tmp_path / "photos" / "red").iterdir())[0])
    result = lib.search(own, k=20, filters=SearchFilters(label="blue"))
    assert len(result.hits) == 12 and {h.label for h in result.hits} == {"blue"}
    under = lib.search(own, k=20, filters=SearchFilters(under=tmp_path / "photos" / "green"))
    assert len(under.hits) == 12 and all("/green/" in h.path for h in under.hits)
    both = lib.search(own, k=20, filters=SearchFilters(label="green", under=tmp_path / "photos" / "blue"))
    assert both.hits == []
    with pytest.raises(InvalidParameterError, match="labels: blue, green, red"):
        lib.search(own, filters=SearchFilters(label="purple"))
    with pytest.raises(InvalidParameterError, match="is under"):
        lib.search(own, filters=SearchFilters(under=tmp_path / "photos" / "gre"))  # a prefix, not a folder


def test_cluster_filter_and_column_come_from_the_latest_run(lib):
    ids = [int(i) for i in lib.reduced().ids]
    clusters = {i: n % 2 for n, i in enumerate(ids)}
    run = add_cluster_run(lib, clusters, {0: "even", 1: "odd"}, lib.reducer().fingerprint)
    result = lib.search(ids[0], k=30, filters=SearchFilters(cluster=1))
    assert result.cluster_run == run and len(result.hits) == len(ids) // 2
    assert all(h.cluster == 1 and h.cluster_name == "odd" for h in result.hits)
    assert {h.cluster for h in lib.search(ids[0], k=30).hits} == {0, 1}
    with pytest.raises(InvalidParameterError, match="has no cluster 7"):
        lib.search(ids[0], filters=SearchFilters(cluster=7))
    with pytest.raises(InvalidParameterError, match="no clustering run 99"):
        lib.search(ids[0], filters=SearchFilters(run=99))


def test_confidence_is_one_minus_d_over_the_farthest_member_of_the_query_cluster(lib):
    ids = np.asarray(lib.reduced().ids)
    X = np.asarray(lib.reduced().vectors, dtype=np.float64)
    labels = {int(i): int(n % 3) for n, i in enumerate(ids)}
    add_cluster_run(lib, labels, {0: "a", 1: "b", 2: "c"}, lib.reducer().fingerprint)
    centres = np.stack([X[[labels[int(i)] == c for i in ids]].mean(axis=0) for c in range(3)])
    q = X[4] / np.linalg.norm(X[4])
    home = int(np.argmin(((centres - q) ** 2).sum(axis=1)))
    members = X[[labels[int(i)] == home for i in ids]]
    max_d = ((members - q) ** 2).sum(axis=1).max()
    for h in lib.search(int(ids[4]), k=10).hits:
        assert h.confidence == pytest.approx(max(0.0, 1 - h.distance / max_d), abs=1e-4)


def test_probability_only_on_labelled_libraries(tmp_path):
    with build(tmp_path, labels="none") as unlabelled:
        hits = unlabelled.search(int(unlabelled.reduced().ids[0]), k=5).hits
        assert all(h.probability is None and h.confidence is not None for h in hits)
        assert not (unlabelled.folder / "models" / "match-calibrator.npz").exists()


def test_calibrator_round_trips_and_isotonic_matches_scikit_learn():
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(0)
    sims = np.round(rng.uniform(-1, 1, 3000), 2)
    same = rng.random(3000) < 1 / (1 + np.exp(-6 * sims))
    xs, ys = isotonic_fit(sims, same * 1.0)
    grid = np.linspace(-1.3, 1.3, 400)
    reference = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(sims, same * 1.0)
    np.testing.assert_allclose(np.interp(grid, xs, ys), reference.predict(grid), atol=1e-12)
    for method in ("isotonic", "logistic"):
        fitted = MatchCalibrator(method).fit(sims, same)
        restored = MatchCalibrator.from_arrays(fitted.to_arrays())
        np.testing.assert_array_equal(restored.predict_proba(grid), fitted.predict_proba(grid))


@pytest.mark.parametrize("kind", ["exact", "ivf", "hnsw"])
def test_adding_and_removing_images_updates_the_stored_index_incrementally(lib, tmp_path, kind):
    record = update_index(lib.store, kind)
    write_labelled(tmp_path / "photos", 2, start=50)
    lib.add()
    lib.remove([tmp_path / "photos" / "red"])
    assert [r.kind for r in update_stored_indexes(lib.store)] == [kind]
    after = read_record(lib.store, kind)
    from lookalike.index import load_index

    stored = load_index(lib.folder / "index" / after.file)
    np.testing.assert_array_equal(stored.ids(), np.sort(lib.reduced().ids))
    assert after.count == 2 * 14 and after.trained_on == record.trained_on == 36  # updated, not rebuilt
    own = int(lib.reduced().ids[0])
    assert ids_of(lib.search(own, k=5, kind=kind)) == brute_force(lib, vector_of(lib, own), 5, exclude=(own,))[0]


def test_add_and_remove_keep_the_stored_index_current(lib, tmp_path):
    lib.vector_index("exact")
    write_labelled(tmp_path / "photos", 2, start=50)
    lib.add()
    assert read_record(lib.store, "exact").count == 42
    lib.remove([tmp_path / "photos" / "red"])
    assert read_record(lib.store, "exact").count == 28


def test_a_reader_sees_the_catalog_even_when_the_index_file_lags(lib, tmp_path, monkeypatch):
    lib.vector_index()  # stored index for the 36 images
    monkeypatch.setattr(Library, "_update_indexes", lambda self: None)  # as if killed before updating
    write_labelled(tmp_path / "photos", 3, start=70)
    lib.add()
    lib.remove([tmp_path / "photos" / "blue"])  # the index file now lags the catalog both ways
    with Library.open(lib.folder, readonly=True) as reader:
        searcher = Searcher(reader)
        assert len(searcher.live.extra.ids()) == 6 and len(searcher.live.stale) == 12
        own = int(reader.reduced().ids[0])
        result = searcher.search(own, k=30)
        assert ids_of(result) == brute_force(reader, vector_of(reader, own), 30, exclude=(own,))[0]
        assert not any("/blue/" in h.path for h in result.hits)
        lib.vector_index()  # the writer catches up; the reader reloads on refresh
        assert searcher.refresh() and searcher.live.is_plain
        assert ids_of(searcher.search(own, k=30)) == ids_of(result)


def test_a_kill_between_file_and_record_or_a_broken_file_is_repaired(lib):
    record = update_index(lib.store, "exact")
    key = "vector_index.exact"
    with lib.catalog.transaction() as db:  # as if killed after renaming the file, before the commit
        lib.catalog.set_meta(db, key, json.dumps({**json.loads(lib.catalog.get_meta(key)), "count": 1}))
    assert update_index(lib.store, "exact").count == record.count == 36
    path = lib.folder / "index" / record.file
    path.write_bytes(b"not a faiss index")
    own = int(lib.reduced().ids[0])
    assert ids_of(lib.search(own, k=3)) == brute_force(lib, vector_of(lib, own), 3, exclude=(own,))[0]


def test_a_pca_refit_makes_the_old_index_unusable_by_name_and_it_is_rebuilt(lib):
    old = update_index(lib.store, "exact")
    lib.reduce(ReduceConfig(n_components=8), refit=True)
    new = update_index(lib.store, "exact")
    assert new.reducer != old.reducer and new.dim == 8
    assert not (lib.folder / "index" / old.file).exists()
    assert index_path(lib.folder, "exact", new.reducer).exists()
    own = int(lib.reduced().ids[2])
    assert ids_of(lib.search(own, k=4)) == brute_force(lib, vector_of(lib, own), 4, exclude=(own,))[0]


def test_duplicates_exact_near_and_semantic(lib, tmp_path):
    photos = tmp_path / "photos"
    original = photos / "red" / "blocks.png"  # sharp edges: a stable perceptual hash
    blocks = np.random.default_rng(5).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(blocks).resize((128, 128), Image.Resampling.NEAREST).save(original)
    shutil.copy(original, photos / "red" / "copy.png")  # identical content
    Image.open(original).save(photos / "red" / "recoded.jpg", quality=80)  # the same picture, re-encoded
    lib.add()
    groups = lib.duplicates(near_bits=6, min_similarity=0.999)
    group = next(g for g in groups if str(original) in g.paths)
    assert {p.rsplit("/", 1)[1] for p in group.paths} == {original.name, "copy.png", "recoded.jpg"}
    assert {"exact", "near", "semantic"} <= set(group.kinds)
    assert all(0 <= link.score <= 1 and link.reason for link in group.links)
    exact_only = lib.duplicates(near_bits=None, min_similarity=None)
    assert [sorted(p.rsplit("/", 1)[1] for p in g.paths) for g in exact_only] == [sorted([original.name, "copy.png"])]


def test_a_reader_without_a_stored_index_uses_the_stored_reduced_vectors(lib, monkeypatch):
    """A read-only app has no stored search index to open; it must not reduce every vector again
    for each search (3.5 s at 60k), and must answer as brute force over the stored vectors."""
    import lookalike.reduce.stored as stored

    lib.reduced()  # the stored reduced vectors are current; no search index was ever built
    with Library.open(lib.folder, readonly=True) as reader:
        monkeypatch.setattr(stored, "transform_all", lambda *a: pytest.fail("reduced every vector again"))
        own = int(reader.reduced().ids[3])
        result = reader.search(own, k=9)
        assert ids_of(result) == brute_force(reader, vector_of(reader, own), 9, exclude=(own,))[0]
