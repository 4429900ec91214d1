"""Duplicates that survive everyday edits: precision and recall of each tier against PyPI imagehash.

From real photos (Tux Paint stamps, scikit-image samples, dogs-vs-cats upscaled) it makes each
edit of benchmarks/duplicate_edits.py at two strengths, mixes in unrelated photos, indexes both
sets with the default backbone, and scores every pair of images by each method: lookalike's near
tier (pHash, plain and with flips/turns), semantic tier (plain and with mirrored vectors) and
their union, and imagehash's phash, dhash, whash, average_hash and crop_resistant_hash (the
last on a subset: it takes ~1 s per image). The union without mirrored vectors (the default)
is also run through `Library.duplicates`: groups as a user sees them, the links themselves
(with the dHash links, which the union here leaves out), the edit each link names. The
union also has the near+semantic links (pHash within a looser distance AND cosine above a lower
one, :func:`lookalike.index.duplicates.confirmed_pairs`), each kept only where it adds an image to
a group, never where it would merge two (:func:`attached`; the library takes its candidates from
each image's 16 nearest neighbours, which `Library.duplicates` itself measures). Thresholds are chosen on a TUNE set made
from other photos, as large as the REPORT set (false pairs grow with the square of the images,
true ones linearly, so a smaller TUNE set picks thresholds too loose for the REPORT set): for
each method the one with the best recall at precision >= 0.95; for the union the four with the
best recall of the groups shown at precision >= 0.95 of those groups (lookalike's defaults,
lookalike.config). They are reported on the REPORT set, with each method's whole curve.
Every imagehash method and tier is also scored on the groups it shows (``as_groups``: threshold
chosen on TUNE groups), like for like with the union. ``lone_copies`` shows what the curve cannot
see, with every photo's 14 copies: subsets with one copy per photo, and the photos without their
copies, scored with and without DUPLICATE_FOUND_SIMILARITY (a near+semantic link between two
images in no group needs that cosine).

    flock /tmp/lookalike-cpu.lock python benchmarks/bench_duplicates.py --out bench-results/duplicates.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from duplicate_edits import EDITS, export, normalised, skimage_photos, tux_pool  # noqa: E402

from lookalike.config import DUPLICATE_FOUND_SIMILARITY  # noqa: E402
from lookalike.embed.phash import hamming_distance  # noqa: E402
from lookalike.index.dihedral import TRANSFORMS, transform_hashes  # noqa: E402

TARGET_PRECISION = 0.95
NEAR_BITS = list(range(0, 21))
COSINES = [round(0.50 + 0.01 * i, 2) for i in range(50)]
UNION_BITS = range(0, 13)
UNION_COSINES = [c for c in COSINES if c >= 0.8]
CONFIRM_BITS = (None, 14, 18, 20, 22, 24, 26)  # None: no near+semantic links
CONFIRM_COSINES = (0.7, 0.75, 0.8, 0.85, 0.9)
IMAGEHASH = ("phash", "dhash", "whash", "average_hash")


# -- data -------------------------------------------------------------------------------------------
def write_set(folder: Path, originals: list[Image.Image], unrelated: list[Image.Image]) -> list[dict]:
    """Originals, their edited copies and the unrelated photos as files; one record per file."""
    folder.mkdir(parents=True)
    records = []
    for g, photo in enumerate(originals):
        base = normalised(photo)
        base.save(folder / f"g{g:04d}_original.png")
        records.append({"file": f"g{g:04d}_original.png", "group": g, "edit": None, "strength": 0})
        for edit, make in EDITS.items():
            for strength in (1, 2):
                name = f"g{g:04d}_{edit}_{strength}.png"
                make(base, strength).save(folder / name)
                records.append({"file": name, "group": g, "edit": edit, "strength": strength})
    for u, photo in enumerate(unrelated):
        normalised(photo).save(folder / f"u{u:04d}.png")
        records.append({"file": f"u{u:04d}.png", "group": -1 - u, "edit": None, "strength": 0})
    return records


def pools(cache: Path, args: argparse.Namespace) -> dict[str, tuple[list[Image.Image], list[Image.Image]]]:
    """{'tune': (originals, unrelated), 'report': (...)} from disjoint photos, seeded; the REPORT
    photos come first, so they do not depend on the size of the TUNE set."""
    rng = random.Random(args.seed)
    tux = tux_pool(export("tuxpaint", cache / "tuxpaint"))
    dogs = export("dogs-vs-cats", cache / "dogs-vs-cats", limit=2000)
    rng.shuffle(tux)
    rng.shuffle(dogs)
    sk = skimage_photos()

    def take(count: int) -> list[Path]:
        nonlocal tux, dogs
        n_tux = count // 2
        taken = [*tux[:n_tux], *dogs[: count - n_tux]]
        tux, dogs = tux[n_tux:], dogs[count - n_tux :]
        return taken

    report, report_unrelated = take(args.originals - len(sk)), take(args.unrelated)
    tune, tune_unrelated = take(args.tune), take(args.tune)
    load = lambda paths: [Image.open(p) for p in paths]  # noqa: E731
    return {"tune": (load(tune), load(tune_unrelated)), "report": (sk + load(report), load(report_unrelated))}


# -- scores of every pair ---------------------------------------------------------------------------
def candidates(score_rows, n: int, floor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, score) of pairs i < j scoring >= floor; score_rows(start, stop) -> (rows, n) scores."""
    found = []
    for start in range(0, n, 512):
        block = score_rows(start, min(n, start + 512))
        i, j = np.nonzero(block >= floor)
        i += start
        keep = j > i
        found.append((i[keep], j[keep], block[i[keep] - start, j[keep]]))
    return tuple(np.concatenate(parts) for parts in zip(*found))  # type: ignore[return-value]


def hash_scores(hashes: np.ndarray, transforms: tuple[str, ...], max_bits: int = max(NEAR_BITS)) -> tuple:
    """-(smallest Hamming distance over the transforms, either way round) of every pair within
    ``max_bits``."""
    variants = [transform_hashes(hashes, t) for t in transforms]

    def rows(start: int, stop: int) -> np.ndarray:
        best = np.full((stop - start, len(hashes)), 64, dtype=np.int64)
        for v in variants:
            best = np.minimum(best, hamming_distance(v[start:stop, None], hashes[None, :]))
            best = np.minimum(best, hamming_distance(hashes[start:stop, None], v[None, :]))
        return -best.astype(np.float32)

    return candidates(rows, len(hashes), -max_bits)


def cosine_scores(vectors: np.ndarray, mirrored: np.ndarray | None) -> tuple:
    def rows(start: int, stop: int) -> np.ndarray:
        sims = vectors[start:stop] @ vectors.T
        if mirrored is not None:
            sims = np.maximum(sims, mirrored[start:stop] @ vectors.T)
            sims = np.maximum(sims, vectors[start:stop] @ mirrored.T)
        return sims

    return candidates(rows, len(vectors), min(COSINES))


# -- curves -----------------------------------------------------------------------------------------
class Truth:
    """Ground truth of a set: which pairs are duplicates, and each (original, edited copy) pair."""

    def __init__(self, records: list[dict]) -> None:
        self.groups = np.array([r["group"] for r in records])
        self.n = len(records)
        original = {r["group"]: k for k, r in enumerate(records) if r["edit"] is None and r["group"] >= 0}
        self.edited = [(original[r["group"]], k, r["edit"], r["strength"]) for k, r in enumerate(records) if r["edit"]]
        self.edited_keys = np.array([min(a, b) * self.n + max(a, b) for a, b, *_ in self.edited], dtype=np.int64)
        self.edit_names = np.array([e for _, _, e, _ in self.edited])
        self.strengths = np.array([s for *_, s in self.edited])

    def evaluate(self, predicted: np.ndarray) -> dict:
        """Precision over all predicted pairs (keys i * n + j, i < j), recall of (original, edit)
        pairs overall and per edit."""
        i, j = np.divmod(predicted, self.n)
        correct = int(np.sum((self.groups[i] == self.groups[j]) & (self.groups[i] >= 0)))
        result = {"predicted_pairs": len(predicted), "precision": correct / len(predicted) if len(predicted) else 1.0}
        hits = np.isin(self.edited_keys, predicted)
        result["recall"] = float(hits.mean())
        result["recall_per_edit"] = {e: float(hits[self.edit_names == e].mean()) for e in EDITS}
        result["recall_per_edit_strength"] = {
            f"{e}_{s}": float(hits[(self.edit_names == e) & (self.strengths == s)].mean()) for e in EDITS for s in (1, 2)
        }
        return result


    def evaluate_groups(self, predicted: np.ndarray) -> dict:
        """The same, for the groups a user sees: every two images joined by a chain of pairs."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        i, j = np.divmod(predicted, self.n)
        graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(self.n, self.n))
        _, component = connected_components(graph, directed=False)
        sizes = np.bincount(component)
        linked = int((sizes * (sizes - 1) // 2).sum())
        real = self.groups >= 0
        _, together = np.unique(component[real] * (self.groups.max() + 1) + self.groups[real], return_counts=True)
        correct = int((together * (together - 1) // 2).sum())
        a, b = self.edited_keys // self.n, self.edited_keys % self.n
        hits = component[a] == component[b]
        return {
            "groups": int((sizes > 1).sum()), "pairs_in_groups": linked,
            "precision": correct / linked if linked else 1.0, "recall": float(hits.mean()),
            "recall_per_edit": {e: float(hits[self.edit_names == e].mean()) for e in EDITS},
        }


def predicted_at(pairs: tuple, n: int, threshold: float) -> np.ndarray:
    """Keys i * n + j of the pairs scoring >= threshold."""
    i, j, score = pairs
    keep = score >= threshold - 1e-6
    return np.unique(i[keep].astype(np.int64) * n + j[keep])


def choose(pairs: tuple, truth: Truth, thresholds: list[float], groups: bool = False) -> tuple[float, list[dict]]:
    """The threshold with the best recall at precision >= TARGET (strictest when none reaches it), and the curve;
    with ``groups`` both are counted on the groups a user sees (:meth:`Truth.evaluate_groups`)."""
    score = truth.evaluate_groups if groups else truth.evaluate
    curve = [{"threshold": t, **score(predicted_at(pairs, truth.n, t))} for t in thresholds]
    ok = [c for c in curve if c["precision"] >= TARGET_PRECISION]
    best = max(ok, key=lambda c: c["recall"]) if ok else max(curve, key=lambda c: c["precision"])
    return best["threshold"], curve


def union_keys(
    near: tuple, near_cos: np.ndarray, sem: tuple, n: int, chosen: tuple, found_above: float | None = DUPLICATE_FOUND_SIMILARITY
) -> np.ndarray:
    """Keys of the pairs the union links at ``chosen`` = (near bits, cosine, near+semantic bits or
    None, near+semantic cosine): near pairs, semantic pairs, and the near pairs within the looser
    bits whose cosine (``near_cos``, aligned with ``near``) reaches the lower one, each of these
    kept only where it adds one image to a group (:func:`attached`), as `Library.duplicates` does."""
    bits, cos, both_bits, both_cos = chosen
    keys = np.union1d(predicted_at(near, n, -bits), predicted_at(sem, n, cos))
    if both_bits is None:
        return keys
    return attached(keys, *both_links(near, near_cos, n, both_bits, both_cos), n, found_above)


def both_links(near: tuple, near_cos: np.ndarray, n: int, both_bits: int, both_cos: float) -> tuple:
    """(keys, cosines) of the near+semantic pairs: within ``both_bits`` and of cosine >= ``both_cos``."""
    i, j, score = near
    keep = (score >= -both_bits - 1e-6) & (near_cos >= both_cos - 1e-6)
    return i[keep].astype(np.int64) * n + j[keep], near_cos[keep]


def attached(strong: np.ndarray, weak: np.ndarray, weak_cos: np.ndarray, n: int, found_above: float | None = None) -> np.ndarray:
    """``strong`` keys and the ``weak`` ones that :func:`lookalike.index.duplicates.group_pairs`
    keeps: taken by falling cosine, each only when one of its images is still alone, and when
    both are, only at a cosine of ``found_above`` or more."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    weak, first = np.unique(weak, return_index=True)
    keep = ~np.isin(weak, strong)
    weak, weak_cos = weak[keep], weak_cos[first][keep]
    i, j = np.divmod(strong, n)
    _, component = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)), directed=False)
    size = np.bincount(component).tolist()
    parent = list(range(len(size)))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    kept = []
    for k in np.argsort(-weak_cos, kind="stable").tolist():
        a, b = divmod(int(weak[k]), n)
        ra, rb = root(int(component[a])), root(int(component[b]))
        alone = size[ra] == size[rb] == 1
        if ra == rb or (min(size[ra], size[rb]) == 1 and not (alone and found_above is not None and weak_cos[k] < found_above)):
            kept.append(weak[k])
            if ra != rb:
                parent[rb] = ra
                size[ra] += size[rb]
    return np.union1d(strong, np.array(kept, np.int64))


def choose_union(
    near: tuple, near_cos: np.ndarray, sem: tuple, truth: Truth, confirm: tuple = CONFIRM_BITS, groups: bool = True
) -> tuple:
    """(near bits, cosine, near+semantic bits, near+semantic cosine) of the union with the best
    recall at precision >= TARGET, counted on the groups a user sees (a false link merges two
    groups: stricter than counting pairs), or with ``groups=False`` on the pairs linked;
    ``confirm`` = (None,) leaves near+semantic out."""
    score = truth.evaluate_groups if groups else truth.evaluate
    n = truth.n
    near_at = {bits: predicted_at(near, n, -bits) for bits in UNION_BITS}
    sem_at = {cos: predicted_at(sem, n, cos) for cos in UNION_COSINES}
    best, best_recall = (0, 0.99, None, None), -1.0
    for both_bits in confirm:
        for both_cos in (None,) if both_bits is None else CONFIRM_COSINES:
            both = None if both_bits is None else both_links(near, near_cos, n, both_bits, both_cos)
            for bits in UNION_BITS:
                for cos in UNION_COSINES:
                    if both_cos is not None and both_cos >= cos:
                        continue
                    strong = np.union1d(near_at[bits], sem_at[cos])
                    result = score(strong if both is None else attached(strong, *both, n))
                    if result["precision"] >= TARGET_PRECISION and result["recall"] > best_recall:
                        best, best_recall = (bits, cos, both_bits, both_cos), result["recall"]
    return best


def near_cosines(near: tuple, data: dict, mirror: bool) -> np.ndarray:
    """The cosine of each near pair (with ``mirror``, the larger of plain and mirrored), in
    chunks: within 26 bits after the transforms are millions of pairs."""
    i, j, _ = near
    vectors, mirrored = data["vectors"], data["mirrored"]
    cos = np.empty(len(i), np.float32)
    for start in range(0, len(i), 100_000):
        a, b = i[start : start + 100_000], j[start : start + 100_000]
        part = np.einsum("ij,ij->i", vectors[a], vectors[b])
        if mirror:
            part = np.maximum(part, np.einsum("ij,ij->i", mirrored[a], vectors[b]))
            part = np.maximum(part, np.einsum("ij,ij->i", vectors[a], mirrored[b]))
        cos[start : start + 100_000] = part
    return cos


def restrict(pairs: tuple, keep: np.ndarray) -> tuple:
    """The pairs among the rows ``keep`` (sorted), renumbered 0..len(keep)-1."""
    new = np.full(int(keep.max()) + 1, -1)
    new[keep] = np.arange(len(keep))
    i, j, score = pairs
    inside = (i <= keep.max()) & (j <= keep.max())
    i, j, score = i[inside], j[inside], score[inside]
    both = (new[i] >= 0) & (new[j] >= 0)
    a, b = new[i[both]], new[j[both]]
    return np.minimum(a, b), np.maximum(a, b), score[both]


# -- methods ----------------------------------------------------------------------------------------
def index_set(folder: Path, records: list[dict], library: Path) -> dict:
    """Index the set with the default backbone; vectors, mirrored vectors and pHashes in record order."""
    from lookalike.library import Library
    from lookalike.search.flipped import mirrored_vectors
    from lookalike.store import images

    row_of = {r["file"]: k for k, r in enumerate(records)}
    timing = {}
    with Library.create(library) as lib:
        start = time.perf_counter()
        lib.add([folder])
        timing["index_seconds"] = time.perf_counter() - start
        reduced = lib.reduced()
        files = lib.store.catalog.query("SELECT image_id, path FROM files")
        vectors = by_record(files, row_of, reduced.ids, reduced.vectors)
        start = time.perf_counter()
        ids, flipped = mirrored_vectors(lib.store, reduced.ids)
        timing["mirror_seconds"] = time.perf_counter() - start
        mirrored = by_record(files, row_of, ids, flipped)
        hashes = by_record(files, row_of, *images.phashes(lib.store.catalog))
    return {"vectors": vectors, "mirrored": mirrored, "hashes": hashes, "timing": timing}


def by_record(files: list, row_of: dict[str, int], ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` of images ``ids`` in record order: every file of an image gets its value (files
    of identical content, such as a symmetric photo and its flip, are one image)."""
    rows_of: dict[int, list[int]] = {}
    for image_id, path in files:
        rows_of.setdefault(int(image_id), []).append(row_of[Path(path).name])
    out = np.zeros((len(row_of), *values.shape[1:]), values.dtype)
    for image_id, value in zip(ids.tolist(), values):
        out[rows_of[int(image_id)]] = value
    return out


def records_of(folder: Path) -> list[dict]:
    """The records of a set written by :func:`write_set`, from its file names."""
    records = []
    for path in sorted(folder.iterdir()):
        parts = path.stem.split("_")
        if parts[0].startswith("u"):
            records.append({"file": path.name, "group": -1 - int(parts[0][1:]), "edit": None, "strength": 0})
        else:
            edit = None if parts[1] == "original" else parts[1]
            records.append({"file": path.name, "group": int(parts[0][1:]), "edit": edit,
                            "strength": int(parts[2]) if edit else 0})
    return records


def reopen_set(library: Path, records: list[dict]) -> dict:
    """Vectors and pHashes of a set indexed before (``--reuse``); no mirrored vectors."""
    from lookalike.library import Library
    from lookalike.store import images

    row_of = {r["file"]: k for k, r in enumerate(records)}
    with Library.open(library) as lib:
        reduced = lib.reduced()
        files = lib.store.catalog.query("SELECT image_id, path FROM files")
        vectors = by_record(files, row_of, reduced.ids, reduced.vectors)
        hashes = by_record(files, row_of, *images.phashes(lib.store.catalog))
    return {"vectors": vectors, "mirrored": None, "hashes": hashes, "timing": {}}


def imagehash_scores(folder: Path, records: list[dict]) -> dict[str, tuple]:
    import imagehash

    out = {}
    images = [Image.open(folder / r["file"]).convert("RGB") for r in records]
    for name in IMAGEHASH:
        method = getattr(imagehash, name)
        codes = np.array([int("".join("1" if b else "0" for b in method(im).hash.ravel()), 2) for im in images], np.uint64)
        out[name] = hash_scores(codes, ("identity",))
    return out


def crop_resistant_scores(folder: Path, records: list[dict]) -> tuple:
    """-(smallest distance between any segment hash of one image and any of the other's): the
    score whose threshold is imagehash's ``matches(hamming_cutoff=t)`` (region_cutoff 1)."""
    import imagehash

    hashes = [imagehash.crop_resistant_hash(Image.open(folder / r["file"]).convert("RGB")) for r in records]
    owner = np.concatenate([[k] * len(h.segment_hashes) for k, h in enumerate(hashes)])
    codes = np.array([int("".join("1" if b else "0" for b in s.hash.ravel()), 2)
                      for h in hashes for s in h.segment_hashes], np.uint64)
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])  # every image has >= 1 segment
    per_image = np.concatenate([
        np.minimum.reduceat(hamming_distance(codes[s : s + 256, None], codes[None, :]), starts, axis=1)
        for s in range(0, len(codes), 256)
    ])
    best = np.minimum.reduceat(per_image, starts, axis=0)
    for a, b in ((0, 1), (0, 15), (1, 2)):  # the score agrees with imagehash's own matching
        assert hashes[a].matches(hashes[b], hamming_cutoff=int(best[a, b])) and (
            best[a, b] == 0 or not hashes[a].matches(hashes[b], hamming_cutoff=int(best[a, b]) - 1))
    return candidates(lambda s, e: -best[s:e].astype(np.float32), len(records), -max(NEAR_BITS))


def library_run(lib_path: Path, records: list[dict], truth: Truth, chosen: tuple, mirror: bool) -> dict:
    """`Library.duplicates` itself at the chosen thresholds: pairs found, edit labels, time."""
    from lookalike.library import Library

    bits, cos, both_bits, both_cos = chosen
    row_of = {r["file"]: k for k, r in enumerate(records)}
    with Library.open(lib_path) as lib:
        start = time.perf_counter()
        groups = lib.duplicates(near_bits=bits, min_similarity=cos, confirm_bits=both_bits,
                                confirm_similarity=cos if both_cos is None else both_cos, kind="exact", mirror=mirror)
        seconds = time.perf_counter() - start
    predicted, labels = [], {}
    for group in groups:  # what a user sees: every two files of a group are duplicates
        rows = sorted(row_of[Path(p).name] for p in group.paths)
        predicted += [a * truth.n + b for k, a in enumerate(rows) for b in rows[k + 1 :]]
        for link in sorted(group.links, key=lambda link: link.kind != "near"):  # near evidence first
            a, b = sorted((row_of[Path(link.a).name], row_of[Path(link.b).name]))
            labels.setdefault(a * truth.n + b, link.edit)
    result = {"seconds": seconds, "groups": len(groups), **truth.evaluate(np.unique(np.array(predicted, np.int64)))}
    direct = truth.evaluate(np.array(sorted(labels), np.int64))  # the links themselves, as imagehash's rows count
    result["direct_links"] = {k: direct[k] for k in ("predicted_pairs", "precision", "recall", "recall_per_edit")}
    named = {}
    for a, b, edit, _ in truth.edited:
        key = min(a, b) * truth.n + max(a, b)
        if key in labels:
            named.setdefault(edit, []).append(labels[key])
    result["edit_named"] = {e: {str(k): v.count(k) for k in set(v)} for e, v in named.items()}
    return result


# -- run --------------------------------------------------------------------------------------------
def scores_of(data: dict) -> dict[str, tuple]:
    near = hash_scores(data["hashes"], ("identity",))
    near_t = hash_scores(data["hashes"], TRANSFORMS, max(b for b in CONFIRM_BITS if b is not None))  # near+semantic too
    scores = {"near": near, "near+transforms": near_t, "semantic": cosine_scores(data["vectors"], None)}
    if data["mirrored"] is not None:
        scores["semantic+mirror"] = cosine_scores(data["vectors"], data["mirrored"])
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--originals", type=int, default=300, help="photos edited in the REPORT set")
    parser.add_argument("--unrelated", type=int, default=300, help="unrelated photos in the REPORT set")
    parser.add_argument("--tune", type=int, default=300, help="photos edited (and unrelated) in the TUNE set")
    parser.add_argument("--crop-resistant", type=int, default=16, help="groups (and unrelated) for crop_resistant_hash")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=None,
                        help="keep the sets and their libraries in this new folder (for --reuse) instead of a temporary one")
    parser.add_argument("--reuse", type=Path, default=None,
                        help="a folder with tune/, report/ and their .lookalike libraries from an earlier run "
                        "(no mirrored vectors then; libraries indexed before dHashes were stored have none)")
    args = parser.parse_args()
    result: dict = {"settings": vars(args) | {"out": str(args.out)}, "edits": list(EDITS)}
    with tempfile.TemporaryDirectory(prefix="bench-duplicates-") as tmp:
        work = args.reuse or args.work or Path(tmp)
        sets = {"tune": None, "report": None} if args.reuse else pools(work / "datasets", args)
        per_set = {}
        for name, photos in sets.items():
            if photos is None:
                records = records_of(work / name)
                data = reopen_set(work / f"{name}.lookalike", records)
            else:
                records = write_set(work / name, *photos)
                data = index_set(work / name, records, work / f"{name}.lookalike")
            scores = scores_of(data) | imagehash_scores(work / name, records)
            per_set[name] = (records, Truth(records), scores, data["timing"], data)
            print(f"{name}: {len(records)} images, {data['timing']}", file=sys.stderr)
        result["report"] = report(per_set, work, args)
    text = json.dumps(result, indent=1, default=str)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)


def thresholds_of(method: str) -> list[float]:
    return COSINES if method.startswith("semantic") else [-b for b in NEAR_BITS]


def report(per_set: dict, work: Path, args: argparse.Namespace) -> dict:
    tune_records, tune_truth, tune_scores, _, tune_data = per_set["tune"]
    records, truth, scores, timing, data = per_set["report"]
    out: dict = {"images": truth.n, "tune_images": tune_truth.n, "timing": timing, "methods": {}}
    for method, pairs in scores.items():
        chosen, _ = choose(tune_scores[method], tune_truth, thresholds_of(method))
        _, curve = choose(pairs, truth, thresholds_of(method))
        at = next(c for c in curve if c["threshold"] == chosen)
        out["methods"][method] = {"threshold_from_tune": chosen, **at, "curve": [
            {k: c[k] for k in ("threshold", "precision", "recall", "predicted_pairs", "recall_per_edit")} for c in curve]}
        # like for like with lookalike's groups: threshold chosen on TUNE groups, REPORT groups
        chosen, _ = choose(tune_scores[method], tune_truth, thresholds_of(method), groups=True)
        out["methods"][method]["as_groups"] = {
            "threshold_from_tune": chosen, **truth.evaluate_groups(predicted_at(pairs, truth.n, chosen))}
    near = scores["near+transforms"]
    for mirror in (False, True):
        sem = "semantic+mirror" if mirror else "semantic"
        if sem not in scores:
            continue
        tune_cos = near_cosines(tune_scores["near+transforms"], tune_data, mirror)
        near_cos = near_cosines(near, data, mirror)
        variants = [(CONFIRM_BITS, True, ""), ((None,), True, ", without near+semantic")]
        if not mirror:
            variants.append((CONFIRM_BITS, False, ", chosen on pairs"))
        for confirm, groups, suffix in variants:
            chosen = choose_union(tune_scores["near+transforms"], tune_cos, tune_scores[sem], tune_truth, confirm, groups)
            union = union_keys(near, near_cos, scores[sem], truth.n, chosen)
            name = f"lookalike (near+transforms | {sem}{' | near+semantic' if chosen[2] is not None else ''}){suffix}"
            out["methods"][name] = {"threshold_from_tune": list(chosen), **truth.evaluate(union),
                                    "as_groups": truth.evaluate_groups(union)}
            if not mirror:  # through Library.duplicates itself
                out["methods"][name]["library_run"] = library_run(work / "report.lookalike", records, truth, chosen, mirror)
    plain_cos = near_cosines(near, data, False)  # once: millions of pairs
    out["union_curve"] = [  # groups as shown, near+transforms | semantic (| near+semantic), on the REPORT set
        {"near_bits": bits, "cosine": cos, "near+semantic": [both_bits, both_cos], **{
            k: v for k, v in truth.evaluate_groups(union_keys(near, plain_cos, scores["semantic"], truth.n,
                                                              (bits, cos, both_bits, both_cos))).items()
            if k != "recall_per_edit"}}
        for both_bits, both_cos in ((None, None), (14, 0.9), (18, 0.8), (22, 0.8), (24, 0.8), (26, 0.75), (26, 0.8), (26, 0.85))
        for bits in (0, 4, 6, 8, 10, 12) for cos in (0.8, 0.85, 0.9, 0.95)
    ]
    out["crop_resistant_subset"] = crop_subset(per_set["report"], work, args, out)
    chosen = tuple(out["methods"]["lookalike (near+transforms | semantic | near+semantic)"]["threshold_from_tune"])
    out["lone_copies"] = {name: lone_copies(per_set[name][0], per_set[name][2], per_set[name][4], chosen)
                          for name in ("tune", "report")}
    return out


def lone_copies(records: list[dict], scores: dict, data: dict, chosen: tuple) -> dict:
    """What the TUNE curve cannot see (there every photo has 14 copies, so a copy always has a
    group to join): the union at ``chosen``, with and without DUPLICATE_FOUND_SIMILARITY, on
    subsets with one copy per photo (the photos, one edit at one strength, the unrelated photos)
    and on the photos without any copy (every link there is false, or a look-alike in the pool)."""
    near_cos = near_cosines(scores["near+transforms"], data, False)
    out: dict = {}
    for edit, strength in [(None, 0), *((e, s) for e in EDITS for s in (1, 2))]:
        keep = np.array([k for k, r in enumerate(records) if r["edit"] is None or (r["edit"], r["strength"]) == (edit, strength)])
        truth = Truth([records[k] for k in keep])
        near = restrict(scores["near+transforms"], keep)
        cos = restrict((*scores["near+transforms"][:2], near_cos), keep)[2]
        sem = restrict(scores["semantic"], keep)
        row = {}
        for label, found in (("found_above", DUPLICATE_FOUND_SIMILARITY), ("no_found_above", None)):
            result = truth.evaluate_groups(union_keys(near, cos, sem, truth.n, chosen, found))
            shown = ("groups", "pairs_in_groups") if edit is None else ("groups", "pairs_in_groups", "precision", "recall")
            row[label] = {k: result[k] for k in shown}
        out["no_copies" if edit is None else f"{edit}_{strength}"] = row
    return out


def crop_subset(report_set: tuple, work: Path, args: argparse.Namespace, out: dict) -> dict:
    """crop_resistant_hash and every other method on the same subset (first groups, first unrelated)."""
    records, truth, scores, _, data = report_set
    k = args.crop_resistant
    keep = np.array([i for i, r in enumerate(records) if -k <= r["group"] < k])
    sub_records = [records[i] for i in keep]
    sub_truth = Truth(sub_records)
    subset = {"images": len(keep), "methods": {}}
    crop = crop_resistant_scores(work / "report", sub_records)
    _, curve = choose(crop, sub_truth, [-b for b in NEAR_BITS])
    ok = [c for c in curve if c["precision"] >= TARGET_PRECISION]
    subset["methods"]["crop_resistant_hash (best threshold on this subset)"] = max(ok, key=lambda c: c["recall"]) if ok else None
    for method, pairs in scores.items():
        chosen = out["methods"][method]["threshold_from_tune"]
        subset["methods"][method] = sub_truth.evaluate(predicted_at(restrict(pairs, keep), sub_truth.n, chosen))
    near = scores["near+transforms"]
    for name, entry in out["methods"].items():
        if name.startswith("lookalike ("):
            sem = "semantic+mirror" if "mirror" in name else "semantic"
            near_cos = near_cosines(near, data, sem == "semantic+mirror")
            sub_near, sub_cos = restrict(near, keep), restrict((near[0], near[1], near_cos), keep)[2]
            union = union_keys(sub_near, sub_cos, restrict(scores[sem], keep), sub_truth.n, tuple(entry["threshold_from_tune"]))
            subset["methods"][name] = sub_truth.evaluate(union)
    return subset


if __name__ == "__main__":
    main()
