"""``lookalike check``: verify a library end to end, and rebuild what can be rebuilt.

Checked, in order (each a :class:`lookalike.store.integrity.Finding`):

1. manifest and catalog open (a catalog from a newer lookalike is an error: upgrade);
2. the catalog: SQLite ``quick_check``, foreign keys, every embedded image has a committed row;
3. the raw vectors: the file holds every committed row, all finite;
4. the reducer (PCA) and the reduced vectors load and cover the embedded images;
5. each stored vector index: its file loads, holds the catalog's images, and the vectors of a
   sample of them equal the reduced vectors (a flipped byte shows up here);
6. side files (confidence clusters, match calibrator) load;
7. the image files still exist (a warning: ``lookalike index`` forgets vanished files);
8. every embedded image has a difference hash (a warning: images embedded before lookalike
   stored one are left out of duplicate search's dHash links).

``repair`` (needs the writer lock): images whose vectors are lost are marked pending and embedded
again from their files (``Library.add`` over the known folders); unreadable reduced vectors are
recomputed; damaged, missing or lagging indexes and side files are rebuilt from the reduced
vectors; missing difference hashes are computed from the image files. A damaged catalog is
not repairable here (restore it from a backup): nothing else is
trusted without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import LibraryError, LookalikeError, VectorIndexError
from lookalike.store.integrity import (
    Finding,
    catalog_findings,
    forget_index,
    forget_reduced,
    mark_pending,
    missing_files,
    vector_findings,
)

SAMPLE = 256
"""Images whose index vectors are compared with the reduced vectors, per index."""


@dataclass
class CheckReport:
    """Every finding, and what ``repair`` did."""

    folder: Path
    findings: list[Finding] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.level == "error" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"library": str(self.folder), "ok": self.ok, "repaired": self.repaired,
                "findings": [vars(f) for f in self.findings]}


def check_library(path: str | Path, *, repair: bool = False, progress: Any = None) -> CheckReport:
    """Check the library at ``path``; with ``repair`` fix what can be fixed, then check again."""
    from lookalike.library import Library

    folder = Path(path).expanduser()
    report = CheckReport(folder)
    try:
        lib = Library.open(folder, readonly=not repair)
    except LibraryError as exc:
        report.findings.append(Finding("library", "error", str(exc)))
        return report
    with lib:
        report.findings = findings_of(lib)
        if repair and any(f.level != "ok" and f.repair for f in report.findings):
            report.repaired = repair_library(lib, report.findings, progress)
            report.findings = findings_of(lib)
    return report


def findings_of(lib: Any) -> list[Finding]:
    """Every check, in order; later checks are skipped when the catalog itself is damaged."""
    findings = catalog_findings(lib.catalog)
    if any(f.part == "catalog" and "restore" in f.message for f in findings):
        return findings
    vector_part, _ = vector_findings(lib.catalog, lib.vectors)
    findings += vector_part
    if any(f.level == "error" for f in vector_part):
        return findings + [Finding("index", "warning", "not checked: the raw vectors are damaged")]
    reduced, reduced_finding = _reduced(lib)
    findings.append(reduced_finding)
    if reduced is not None:
        findings += index_findings(lib, reduced)
    findings.append(_files(lib))
    findings.append(_hashes(lib))
    return findings


def _reduced(lib: Any) -> tuple[Any, Finding]:
    try:
        reducer = lib.reducer()
    except LookalikeError as exc:
        return None, Finding("reducer", "error", str(exc), "refit PCA with the stored settings (cluster runs become stale)")
    if reducer is None:
        return None, Finding("reduced", "ok", "no PCA fitted yet (nothing to search)")
    try:
        reduced = lib.reduced()
        np.asarray(reduced.vectors[:1])
    except LookalikeError as exc:
        return None, Finding("reduced", "error", str(exc), "recompute the reduced vectors")
    return reduced, Finding("reduced", "ok", f"{len(reduced.ids)} reduced vectors of dimension {reducer.n_components_}")


def index_findings(lib: Any, reduced: Any) -> list[Finding]:
    """Each stored index and the side files, against the reduced vectors."""
    from lookalike.index import load_index
    from lookalike.search.library_index import INDEX_DIR, read_record, stored_kinds

    findings = []
    ids = np.asarray(reduced.ids, dtype=np.int64)
    for kind in stored_kinds(lib.store):
        record = read_record(lib.store, kind)
        path = lib.folder / INDEX_DIR / record.file if record else None
        if path is None or record is None or record.reducer != reduced.reducer_fingerprint:
            findings.append(Finding(f"index {kind}", "warning", "built on another PCA than the current one", "rebuild it"))
            continue
        try:
            index = load_index(path, mmap=True)
        except VectorIndexError as exc:
            findings.append(Finding(f"index {kind}", "error", str(exc), "rebuild it from the reduced vectors"))
            continue
        findings.append(_compare_index(kind, path, index, ids, reduced.vectors))
    findings += _side_files(lib, reduced.reducer_fingerprint)
    return findings


def _compare_index(kind: str, path: Path, index: Any, ids: np.ndarray, vectors: Any) -> Finding:
    stored = index.ids()
    missing, extra = np.setdiff1d(ids, stored), np.setdiff1d(stored, ids)
    common = np.intersect1d(ids, stored)
    sample = common if len(common) <= SAMPLE else np.random.default_rng(0).choice(common, SAMPLE, replace=False)
    if len(sample):
        order = np.argsort(ids)
        rows = order[np.searchsorted(ids, sample, sorter=order)]
        try:
            got = index.reconstruct(sample)
        except (LookalikeError, RuntimeError) as exc:
            return Finding(f"index {kind}", "error", f"{path}: unreadable vectors ({exc})", "rebuild it")
        expected = np.asarray(vectors[np.sort(rows)])[np.argsort(np.argsort(rows))]
        if not np.allclose(got, expected, atol=1e-4) or not np.isfinite(got).all():
            return Finding(f"index {kind}", "error", f"{path}: its vectors differ from the reduced vectors (damaged)",
                           "rebuild it from the reduced vectors")
    if len(missing) or len(extra):
        return Finding(f"index {kind}", "warning",
                       f"{path.name}: lags the catalog (+{len(missing)} / -{len(extra)} images; searches overlay them)",
                       "bring it up to date")
    return Finding(f"index {kind}", "ok", f"{path.name}: {len(stored)} vectors, sample of {len(sample)} verified")


def _side_files(lib: Any, fingerprint: str) -> list[Finding]:
    from lookalike.search.library_index import CALIBRATOR_FILE, clusters_path
    from lookalike.store.arrays import load_npz

    findings = []
    for name, path in (("confidence clusters", clusters_path(lib.folder, fingerprint)),
                       ("match calibrator", lib.folder / CALIBRATOR_FILE)):
        if path.exists():
            try:
                load_npz(path)
            except LookalikeError as exc:
                findings.append(Finding(name, "error", str(exc), "rebuild it"))
    return findings


def _files(lib: Any) -> Finding:
    gone, total = missing_files(lib.catalog)
    if gone:
        return Finding("files", "warning", f"{gone} of {total} image files are gone from disk "
                       "(`lookalike index` forgets them)")
    return Finding("files", "ok", f"{total} image files present")


def _hashes(lib: Any) -> Finding:
    from lookalike.store.images import missing_dhashes

    missing = missing_dhashes(lib.catalog)
    if missing:
        return Finding("hashes", "warning", f"{missing} embedded images have no difference hash (embedded before "
                       "lookalike stored one): duplicate search leaves them out of its dHash links",
                       "compute them from the image files")
    return Finding("hashes", "ok", "every embedded image has its perceptual hashes")


def repair_library(lib: Any, findings: list[Finding], progress: Any = None) -> list[str]:
    """Fix what ``findings`` say can be fixed; returns what was done."""
    from lookalike.search.library_index import CALIBRATOR_FILE, INDEX_DIR, stored_kinds, update_index

    done = []
    _, lost = vector_findings(lib.catalog, lib.vectors)
    if len(lost):
        mark_pending(lib.catalog, lost, lib.vectors)
        done.append(f"marked {len(lost)} images with lost vectors pending")
        if lib.catalog.roots():
            report = lib.add(progress=progress)
            done.append(f"embedded {report.embedded} images again from their files")
    parts = {f.part for f in findings if f.level != "ok" and f.repair}
    if "reducer" in parts:
        lib.reduce(lib.reduce_config(), refit=True)
        done.append("refitted PCA")
    if "reduced" in parts:
        forget_reduced(lib.catalog)
        lib.reduced()
        done.append("recomputed the reduced vectors")
    damaged_sides = {"confidence clusters", "match calibrator"} & parts
    if damaged_sides:
        for path in (lib.folder / INDEX_DIR).glob("clusters-*.npz"):
            path.unlink(missing_ok=True)
        (lib.folder / CALIBRATOR_FILE).unlink(missing_ok=True)
    kinds = {p.split(" ", 1)[1] for p in parts if p.startswith("index ")} | (set(stored_kinds(lib.store)) if damaged_sides else set())
    for kind in sorted(kinds):
        forget_index(lib.catalog, kind)
        update_index(lib.store, kind, rebuild=True)
        done.append(f"rebuilt the {kind} index")
    if "hashes" in parts:
        from lookalike.embed.rehash import fill_dhashes

        stored, unreadable = fill_dhashes(lib.store, progress)
        done.append(f"computed {stored} difference hashes from the image files"
                    + (f" ({unreadable} images have no unchanged readable file)" if unreadable else ""))
    return done
