"""Catalog schema, transactions, non-UTF-8 paths and version checks."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from lookalike.errors import LibraryFormatError
from lookalike.store.catalog import Catalog, EmbeddedBatch, encode_path, printable_path, to_signed64


def test_non_utf8_path_round_trips_exactly(tmp_path):
    odd = Path(os.fsdecode(b"/photos/caf\xe9.png"))
    assert os.fsencode(Path(os.fsdecode(encode_path(odd)))) == b"/photos/caf\xe9.png"
    assert printable_path(odd) == "/photos/caf\\xe9.png"
    catalog = Catalog(tmp_path / "c.sqlite")
    root_id = catalog.add_root(odd.parent, "none")
    assert catalog.roots() == [(odd.parent, "none")]
    assert catalog.add_root(odd.parent, "folder") == root_id  # idempotent, label mode updated
    assert catalog.roots() == [(odd.parent, "folder")]


def test_transaction_rolls_back_on_error(tmp_path):
    catalog = Catalog(tmp_path / "c.sqlite")
    with pytest.raises(RuntimeError):
        with catalog.transaction() as db:
            catalog.set_meta(db, "raw_rows", 5)
            raise RuntimeError("boom")
    assert catalog.get_meta("raw_rows") is None


def test_file_row_needs_exactly_one_of_image_or_problem(tmp_path):
    catalog = Catalog(tmp_path / "c.sqlite")
    with pytest.raises(sqlite3.IntegrityError):
        with catalog.transaction() as db:
            db.execute(
                "INSERT INTO files(path_bytes, path, size, mtime_ns, seen_at) VALUES (?, ?, 0, 0, 0)",
                (b"/x", "/x"),
            )


def test_wal_mode_and_readonly_reader(tmp_path):
    catalog = Catalog(tmp_path / "c.sqlite")
    assert catalog.query("PRAGMA journal_mode")[0][0] == "wal"
    reader = Catalog(tmp_path / "c.sqlite", readonly=True)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        with reader.transaction() as db:
            reader.set_meta(db, "x", 1)


def test_newer_schema_is_refused(tmp_path):
    catalog = Catalog(tmp_path / "c.sqlite")
    with catalog.transaction() as db:
        catalog.set_meta(db, "schema_version", 99)
    catalog.close()
    with pytest.raises(LibraryFormatError, match="schema version 99"):
        Catalog(tmp_path / "c.sqlite")


def test_garbage_file_is_a_format_error(tmp_path):
    (tmp_path / "c.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(LibraryFormatError, match="cannot read the catalog"):
        Catalog(tmp_path / "c.sqlite")


def test_a_catalog_made_before_dhashes_gets_the_column_when_opened_for_writing(tmp_path):
    from lookalike.store import images

    catalog = Catalog(tmp_path / "c.sqlite")
    with catalog.transaction() as db:
        image_id = catalog.insert_image(db, "abc", "PNG", 4, 3, "pending", None, 0.0)
        catalog.commit_embedded(db, EmbeddedBatch(0, [image_id], [], [], [(to_signed64(2**63 + 5), None, image_id)], 1), 0.0)
        db.execute("ALTER TABLE images DROP COLUMN dhash")  # as catalogs were made before
    catalog.close()
    old = Catalog(tmp_path / "c.sqlite", readonly=True)  # a reader does not change the file
    assert not old.has_column("images", "dhash")
    assert [len(a) for a in images.dhashes(old)] == [0, 0]
    assert images.phashes(old)[1].tolist() == [2**63 + 5]  # what was stored is kept
    old.close()
    upgraded = Catalog(tmp_path / "c.sqlite")
    assert upgraded.has_column("images", "dhash") and [len(a) for a in images.dhashes(upgraded)] == [0, 0]
    with upgraded.transaction() as db:
        upgraded.commit_embedded(db, EmbeddedBatch(0, [image_id], [], [], [(1, to_signed64(2**64 - 1), image_id)], 1), 0.0)
    assert images.dhashes(upgraded)[1].tolist() == [2**64 - 1]
