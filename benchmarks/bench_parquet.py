"""Parquet import and export speed: ``--n`` seeded vectors of ``--dim`` float32, through a library.

Writes one Parquet file the way another job would (content hash, one path, the metadata of a
``pixels`` library, ``--dim`` 3072), imports it into a fresh library (every row a new image),
exports the library again and reads the export back with pyarrow; checks the round trip is exact.
Reports rows/s and MB/s of each step and the export's size on disk.

    python benchmarks/bench_parquet.py --out bench-results/parquet.json [--n 200000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from json_out import emit


def write_input(path: Path, lib, vectors: np.ndarray) -> None:
    """A Parquet file with the library's metadata, as a job outside lookalike would write it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lookalike.store import parquet

    n, dim = vectors.shape
    meta = parquet.describe(lib.manifest.embed, "raw", dim, Path("elsewhere"), None)
    hashes = [hashlib.blake2b(i.to_bytes(8, "little"), digest_size=32).hexdigest() for i in range(n)]
    table = pa.table(
        {
            "hash": pa.array(hashes),
            "paths": pa.array([[f"/remote/images/{i:08d}.jpg"] for i in range(n)], pa.list_(pa.string())),
            "label": pa.array([f"class-{i % 10}" for i in range(n)]),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim),
        }
    ).replace_schema_metadata({parquet.METADATA_KEY: json.dumps(meta).encode()})
    pq.write_table(table, path, use_dictionary=["label"])


def run(n: int, seed: int) -> dict:
    import pyarrow.parquet as pq

    from lookalike import Library

    with tempfile.TemporaryDirectory(prefix="bench-parquet-") as tmp:
        root = Path(tmp)
        lib = Library.create(root / "lib.lookalike", backbone="pixels")
        dim = lib.manifest.embed.dim
        vectors = np.random.default_rng(seed).random((n, dim), dtype=np.float32)
        write_input(root / "in.parquet", lib, vectors)
        started = time.perf_counter()
        report = lib.import_vectors([root / "in.parquet"])
        imported = time.perf_counter() - started
        started = time.perf_counter()
        files = lib.export_parquet(root / "out", rows_per_file=max(1, n // 4))
        exported = time.perf_counter() - started
        lib.close()
        started = time.perf_counter()
        table = pq.read_table(root / "out", columns=["vector"])
        read = time.perf_counter() - started
        back = table.column("vector").combine_chunks().flatten().to_numpy().reshape(n, dim)
        exact = bool(np.array_equal(np.sort(back, axis=0), np.sort(vectors, axis=0)))
        megabytes = vectors.nbytes / 1e6
        return {
            "n": n, "dim": dim, "vector_mb": round(megabytes, 1), "imported": report.imported,
            "import_s": round(imported, 3), "import_rows_per_s": round(n / imported),
            "export_s": round(exported, 3), "export_rows_per_s": round(n / exported),
            "export_mb_per_s": round(megabytes / exported, 1), "read_s": round(read, 3),
            "files": len(files), "export_mb_on_disk": round(sum(f.stat().st_size for f in files) / 1e6, 1),
            "round_trip_exact": exact,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000, help="vectors (default 20,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    args = parser.parse_args()
    result = {"python": sys.version.split()[0], "machine": platform.machine(), **run(args.n, args.seed)}
    emit(result, args.out)


if __name__ == "__main__":
    main()
