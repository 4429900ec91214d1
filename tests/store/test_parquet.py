"""Parquet export and import: round trip, metadata, refusals, and readers that know nothing of lookalike."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lookalike import Library
from lookalike.cli.main import app
from lookalike.config import ClusterConfig, ReduceConfig
from lookalike.errors import VectorImportError
from lookalike.store import parquet
from tests.imagegen import write_images

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A labelled, clustered pixels library of 40 images (two classes), plus one duplicate file."""
    root = tmp_path_factory.mktemp("src")
    write_images(root / "photos" / "red", 20)
    write_images(root / "photos" / "blue", 20, start=100)
    (root / "photos" / "blue" / "copy.png").write_bytes((root / "photos" / "blue" / "img-00100.png").read_bytes())
    lib = Library.create(root / "src.lookalike", backbone="pixels")
    lib.add([root / "photos"], labels="folder")
    lib.reduce(ReduceConfig(n_components=8))
    lib.cluster(ClusterConfig(n_clusters=3))
    yield lib
    lib.close()


def test_export_has_every_column_and_the_metadata(source, tmp_path):
    files = source.export_parquet(tmp_path / "out", rows_per_file=16)
    assert [f.name for f in files] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    table = pa.concat_tables([pq.read_table(f) for f in files])
    assert table.schema.field("vector").type == pa.list_(pa.float32(), 3072)
    assert table.schema.field("paths").type == pa.list_(pa.string())
    ids, vectors = source.embeddings()
    assert table.column("image_id").to_pylist() == ids.tolist()
    np.testing.assert_array_equal(np.stack(table.column("vector").to_numpy(zero_copy_only=False)), vectors)
    rows = {r["image_id"]: r for r in table.to_pylist()}
    hashes = dict(source.catalog.query("SELECT id, hash FROM images"))
    assert all(rows[i]["hash"] == hashes[i] for i in rows)
    copied = [r for r in rows.values() if len(r["paths"]) == 2]
    assert len(copied) == 1 and {Path(p).name for p in copied[0]["paths"]} == {"img-00100.png", "copy.png"}
    assert {r["label"] for r in rows.values()} == {"red", "blue"}
    run_clusters = source.cluster_run()
    expected = dict(zip(run_clusters.image_ids.tolist(), run_clusters.labels.tolist()))
    assert {i: r["cluster"] for i, r in rows.items()} == expected
    meta = json.loads(pq.read_schema(files[0]).metadata[b"lookalike"])
    embed = source.manifest.embed
    assert meta["backbone"] == "pixels" and meta["weights_sha256"] == embed.weights_sha256
    assert meta["dim"] == 3072 and meta["vector_kind"] == "raw" and meta["content_hash"] == "blake2b-256"
    assert meta["preprocessing"] == {
        "image_size": 32, "crop_fraction": embed.crop_fraction, "normalization": embed.normalization, "resize": embed.resize,
    }


def test_reduced_export_states_the_reducer(source, tmp_path):
    (file,) = source.export_parquet(tmp_path / "out", vectors="reduced")
    table = pq.read_table(file)
    assert table.schema.field("vector").type == pa.list_(pa.float32(), 8)
    meta = json.loads(table.schema.metadata[b"lookalike"])
    assert meta["vector_kind"] == "reduced" and meta["reducer_fingerprint"] == source.reducer().fingerprint
    reduced = source.reduced()
    np.testing.assert_allclose(np.stack(table.column("vector").to_numpy(zero_copy_only=False)), reduced.vectors, atol=1e-6)


def test_round_trip_into_a_fresh_library(source, tmp_path):
    run("export", "--library", source.folder, "--out", tmp_path / "out", "--rows-per-file", "25")
    fresh = tmp_path / "fresh.lookalike"
    Library.create(fresh, backbone="pixels").close()
    result = run("import-vectors", tmp_path / "out", "--library", fresh)
    assert result.exit_code == 0, result.output
    assert "imported 40 vectors (0 pending images, 40 new images)" in result.output
    with Library.open(fresh, readonly=True) as lib:
        hashes = dict(lib.catalog.query("SELECT id, hash FROM images"))
        ids, vectors = lib.embeddings()
        got = {hashes[int(i)]: v for i, v in zip(ids, vectors)}
        status = lib.status()
        assert (status.embedded, status.files, status.pending) == (40, 41, 0)
        labels = dict(lib.catalog.query("SELECT path, label FROM files"))
    src_hashes = dict(source.catalog.query("SELECT id, hash FROM images"))
    src_ids, src_vectors = source.embeddings()
    assert got.keys() == {src_hashes[int(i)] for i in src_ids}
    for i, v in zip(src_ids, src_vectors):
        np.testing.assert_array_equal(got[src_hashes[int(i)]], v)
    assert labels == dict(source.catalog.query("SELECT path, label FROM files"))
    again = run("import-vectors", tmp_path / "out", "--library", fresh)
    assert "imported 0 vectors" in again.output and "40 (already embedded in the library)" in again.output


def test_import_fills_pending_images_and_indexing_then_embeds_nothing(source, tmp_path):
    """A scanned library whose images are still pending takes vectors by content hash."""
    source.export_parquet(tmp_path / "out")
    photos = Path(source.catalog.roots()[0][0])
    with Library.create(tmp_path / "lib.lookalike", backbone="pixels") as lib:
        from lookalike.ingest.sync import sync_roots

        sync_roots(lib.catalog, [(photos, "folder")], lib.manifest.ingest)
        assert lib.status().pending == 40
        report = lib.import_vectors([tmp_path / "out"])
        assert (report.filled, report.added) == (40, 0)
        assert lib.add().embedded == 0
        assert lib.status().embedded == 40


def rewrite_metadata(file: Path, target: Path, **changes) -> Path:
    table = pq.read_table(file)
    meta = json.loads(table.schema.metadata[b"lookalike"])
    for key, value in changes.items():
        if key in parquet.PREPROCESSING:
            meta["preprocessing"][key] = value
        else:
            meta[key] = value
    pq.write_table(table.replace_schema_metadata({b"lookalike": json.dumps(meta).encode()}), target)
    return target


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"backbone": "mobilenetv2"}, r"backbone is 'mobilenetv2' in the file but 'pixels' in "),
        ({"weights_sha256": "ab" * 32}, r"weights sha256 is 'abab.*' in the file but '[0-9a-f]{64}' in "),
        ({"crop_fraction": 0.875}, r"preprocessing crop_fraction is 0.875 in the file but 1.0 in "),
        ({"resize": "pillow-bilinear"}, r"preprocessing resize is 'pillow-bilinear' in the file but 'opencv-area-linear'"),
        ({"dim": 1280}, r"dim is 1280 in the file but 3072 in "),
        ({"vector_kind": "reduced"}, r"vector kind is 'reduced' in the file but 'raw' in "),
    ],
    ids=["backbone", "weights", "crop", "resize", "dim", "reduced"],
)
def test_mismatch_is_refused_with_both_values(source, tmp_path, change, message):
    (file,) = source.export_parquet(tmp_path / "out")
    bad = rewrite_metadata(file, tmp_path / "bad.parquet", **change)
    with Library.create(tmp_path / "lib.lookalike", backbone="pixels") as lib:
        with pytest.raises(VectorImportError, match=message):
            lib.import_vectors([bad])
        assert lib.status().embedded == 0
    result = run("import-vectors", bad, "--library", tmp_path / "lib.lookalike")
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1


def test_file_without_metadata_is_refused(tmp_path):
    pq.write_table(pa.table({"hash": ["x"], "vector": [[1.0, 2.0]]}), tmp_path / "plain.parquet")
    with Library.create(tmp_path / "lib.lookalike", backbone="pixels") as lib:
        with pytest.raises(VectorImportError, match="no 'lookalike' schema metadata"):
            lib.import_vectors([tmp_path / "plain.parquet"])


def test_pandas_and_duckdb_read_the_export(source, tmp_path):
    pd = pytest.importorskip("pandas")
    duckdb = pytest.importorskip("duckdb")
    source.export_parquet(tmp_path / "out", rows_per_file=16)
    frame = pd.read_parquet(tmp_path / "out")
    assert len(frame) == 40 and len(frame["vector"].iloc[0]) == 3072
    pattern = str(tmp_path / "out" / "*.parquet")
    counts = dict(duckdb.sql(f"SELECT label, count(*) FROM read_parquet('{pattern}') GROUP BY label").fetchall())
    assert counts == {"red": 20, "blue": 20}
    ids, vectors = source.embeddings()
    first = duckdb.sql(f"SELECT vector FROM read_parquet('{pattern}') WHERE image_id = {int(ids[0])}").fetchall()[0][0]
    np.testing.assert_array_equal(np.asarray(first, dtype=np.float32), vectors[0])
    assert duckdb.sql(f"SELECT max(len(paths)) FROM read_parquet('{pattern}')").fetchall()[0][0] == 2


def test_export_refuses_a_folder_that_holds_an_export(source, tmp_path):
    source.export_parquet(tmp_path / "out")
    result = run("export", "--library", source.folder, "--out", tmp_path / "out")
    assert result.exit_code == 1 and "export into an empty folder" in result.output


def test_rows_without_a_hash_are_matched_by_path(source, tmp_path):
    """A job that knows paths but not lookalike's content hash: pending images matched by path."""
    (file,) = source.export_parquet(tmp_path / "out")
    table = pq.read_table(file)
    hashless = table.set_column(1, "hash", pa.nulls(table.num_rows, pa.string()))
    pq.write_table(hashless, tmp_path / "hashless.parquet")
    photos = Path(source.catalog.roots()[0][0])
    with Library.create(tmp_path / "lib.lookalike", backbone="pixels") as lib:
        from lookalike.ingest.sync import sync_roots

        sync_roots(lib.catalog, [(photos, "folder")], lib.manifest.ingest)
        report = lib.import_vectors([tmp_path / "hashless.parquet"])
        assert (report.filled, report.added) == (40, 0)
        hashes = dict(lib.catalog.query("SELECT id, hash FROM images"))
        ids, vectors = lib.embeddings()
        got = {hashes[int(i)]: v for i, v in zip(ids, vectors)}
    src_hashes = dict(source.catalog.query("SELECT id, hash FROM images"))
    for i, v in zip(*source.embeddings()):
        np.testing.assert_array_equal(got[src_hashes[int(i)]], v)
