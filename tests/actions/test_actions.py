"""Actions on selections without a browser: plans (dry run), effects on disk and in the catalog, the log, undo."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from lookalike import Library
from lookalike.actions import copy_files, export_csv, quarantine, rename_cluster, set_label, undo
from lookalike.actions.selection import Selection, all_but_one, from_cluster, from_csv, from_image_ids, from_paths
from lookalike.config import ClusterConfig
from lookalike.errors import InvalidParameterError
from lookalike.search.duplicates import DuplicateLink, FileGroup
from lookalike.store.annotations import read_actions
from tests.searchlib import build


@pytest.fixture
def lib(tmp_path: Path):
    with build(tmp_path, per_class=4) as library:
        yield library


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def labels(lib: Library) -> dict[str, str | None]:
    return {str(p): label for p, label in lib.catalog.query("SELECT path, label FROM files")}


def test_export_writes_every_path_with_its_label_and_logs(lib: Library, tmp_path: Path) -> None:
    selection = from_paths(lib, [tmp_path / "photos" / "red"])
    assert len(selection) == 4
    planned = export_csv(lib, selection, tmp_path / "out.csv", dry_run=True)
    assert planned.action_id is None and not (tmp_path / "out.csv").exists() and read_actions(lib.catalog) == []
    done = export_csv(lib, selection, tmp_path / "out.csv")
    with open(tmp_path / "out.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["path"] for r in rows] == list(selection.paths)
    assert {r["label"] for r in rows} == {"red"}
    (logged,) = read_actions(lib.catalog)
    assert (logged.id, logged.kind, logged.count) == (done.action_id, "export", 4)
    assert from_csv(tmp_path / "out.csv").paths == selection.paths


@pytest.mark.parametrize("symlink", [False, True], ids=["copy", "symlink"])
def test_copy_and_link_mirror_the_library_folders_and_never_overwrite(
    lib: Library, tmp_path: Path, symlink: bool
) -> None:
    photos = tmp_path / "photos"
    before = tree(photos)
    selection = from_paths(lib, [photos / "green", photos / "blue" / "img-0001.png"])
    dest = tmp_path / "picked"
    assert copy_files(lib, selection, dest, symlink=symlink, dry_run=True).steps and not dest.exists()
    result = copy_files(lib, selection, dest, symlink=symlink)
    assert len(result.steps) == 5 and not result.skipped
    for source, target in result.steps:
        assert Path(target).read_bytes() == Path(source).read_bytes()
        assert Path(target).is_symlink() == symlink
    assert Path(result.steps[0][1]).relative_to(dest).parts[:2] == ("photos", "green")
    again = copy_files(lib, selection, dest, symlink=symlink)
    assert not again.steps and len(again.skipped) == 5 and "already exists" in again.skipped[0][1]
    assert tree(photos) == before  # sources untouched
    assert [a.kind for a in read_actions(lib.catalog)] == ["link" if symlink else "copy"] * 2


def test_quarantine_moves_writes_a_manifest_and_undo_restores_bytes(lib: Library, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    before = tree(photos)
    selection = from_paths(lib, [photos / "red"])
    jail = tmp_path / "quarantine"
    plan = quarantine(lib, selection, jail, dry_run=True)
    assert len(plan.steps) == 4 and tree(photos) == before and not jail.exists()
    done = quarantine(lib, selection, jail)
    assert not any((photos / "red").iterdir())
    manifest = jail / f"lookalike-undo-{done.action_id}.json"
    assert manifest.is_file()
    moved = {Path(t).name: Path(t).read_bytes() for _, t in done.steps}
    assert moved == {Path(p).name: before[str(Path(p).relative_to(photos))] for p in selection.paths}
    assert len(undo(lib, dry_run=True).steps) == 4 and not any((photos / "red").iterdir())
    back = undo(lib)
    assert len(back.steps) == 4
    assert tree(photos) == before
    kinds = [(a.kind, a.undone_at is not None) for a in read_actions(lib.catalog)]
    assert kinds == [("undo", False), ("quarantine", True)]
    with pytest.raises(InvalidParameterError, match="already undone"):
        undo(lib, done.action_id)
    with pytest.raises(InvalidParameterError, match="no quarantine, label or rename left"):
        undo(lib)


def test_undo_never_overwrites_a_file_that_took_the_place(lib: Library, tmp_path: Path) -> None:
    target = tmp_path / "photos" / "red" / "img-0000.png"
    done = quarantine(lib, from_paths(lib, [target]), tmp_path / "q")
    target.write_bytes(b"new")
    result = undo(lib, done.action_id)
    assert not result.steps and "exists again" in result.skipped[0][1]
    assert target.read_bytes() == b"new" and Path(done.steps[0][1]).is_file()


def test_label_is_stored_like_folder_labels_and_undone(lib: Library, tmp_path: Path) -> None:
    before = labels(lib)
    selection = from_paths(lib, [tmp_path / "photos" / "blue" / "img-0000.png", tmp_path / "photos" / "red"])
    assert set_label(lib, selection, "keep", dry_run=True).steps and labels(lib) == before
    set_label(lib, selection, "keep")
    after = labels(lib)
    assert {p for p, label in after.items() if label == "keep"} == set(selection.paths)
    assert {p: after[p] for p in after if p not in selection.paths} == {
        p: before[p] for p in before if p not in selection.paths
    }
    from lookalike.store.images import ids_with_label

    assert len(ids_with_label(lib.catalog, "keep")) == 5  # the search filters see it
    undo(lib)
    assert labels(lib) == before


def test_rename_cluster_is_shown_by_the_run_and_undone(lib: Library) -> None:
    lib.cluster(ClusterConfig(n_clusters=3))
    old = {c.cluster: c.name for c in lib.cluster_run().clusters}
    rename_cluster(lib, 1, "  sunsets ")
    assert {c.cluster: c.name for c in lib.cluster_run().clusters} == old | {1: "sunsets"}
    with pytest.raises(InvalidParameterError, match="has no cluster 7; its clusters are 0, 1, 2"):
        rename_cluster(lib, 7, "x")
    undo(lib)
    assert {c.cluster: c.name for c in lib.cluster_run().clusters} == old


def test_cluster_selection_is_its_members_nearest_first(lib: Library) -> None:
    lib.cluster(ClusterConfig(n_clusters=3))
    run = lib.cluster_run()
    selection = from_cluster(lib, 0)
    members = run.labels == 0
    order = np.argsort(run.distances[members], kind="stable")
    assert list(selection.paths) == list(from_image_ids(lib, run.image_ids[members][order].tolist()).paths)
    with pytest.raises(InvalidParameterError, match="no image in cluster 9"):
        from_cluster(lib, 9)


def test_all_but_one_keeps_the_chosen_file_of_each_group() -> None:
    link = DuplicateLink("a", "b", "exact", "same content", 1.0)
    groups = [FileGroup(["/x/a", "/x/b", "/x/c"], [link]), FileGroup(["/y/d", "/y/e"], [link])]
    assert all_but_one(groups).paths == ("/x/b", "/x/c", "/y/e")
    assert all_but_one(groups, {0: "/x/c"}).paths == ("/x/a", "/x/b", "/y/e")
    with pytest.raises(InvalidParameterError, match="no file '/z' to keep"):
        all_but_one(groups, {1: "/z"})


def test_targets_inside_the_library_and_unknown_paths_are_refused(lib: Library, tmp_path: Path) -> None:
    selection = Selection((str(tmp_path / "photos" / "red" / "img-0000.png"),), "one")
    with pytest.raises(InvalidParameterError, match="inside the library folder"):
        copy_files(lib, selection, lib.folder / "x")
    with pytest.raises(InvalidParameterError, match="not a file or folder of the library"):
        from_paths(lib, [tmp_path / "elsewhere.png"])
