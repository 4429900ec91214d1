"""The :class:`VectorIndex` interface, its registry, file loading and the ``auto`` choice.

Every index stores L2-normalised float32 vectors (n, d) under caller-chosen int64 ids (>= 0,
unique, gaps allowed) and ranks by inner product, which on unit vectors is the cosine similarity.
An index is one FAISS object, so one file holds all of it: its kind is recognised from the FAISS
type when loading, and the search defaults (IVF ``nprobe``, HNSW ``efSearch``) travel with it.

Loading with ``mmap=True`` maps the stored vectors instead of reading them
(``faiss.IO_FLAG_MMAP_IFC``): it works for all three kinds; ``exact`` and ``ivf`` keep only
their ids in RAM, ``hnsw`` also keeps its graph links. A mapped index is read-only: ``add`` and
``remove`` raise VectorIndexError (FAISS would abort the process), so load with ``mmap=False``
to modify it and ``save`` to publish the result.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, ParamSpec, Self, TypeVar

import numpy as np

from lookalike._faiss import import_faiss
from lookalike.config import IndexConfig
from lookalike.errors import InvalidParameterError, VectorIndexError
from lookalike.index._checks import as_ids, as_unit_matrix
from lookalike.store.atomic import atomic_path

_REGISTRY: dict[str, type[VectorIndex]] = {}
P = ParamSpec("P")
T = TypeVar("T")


class VectorIndex(ABC):
    """Nearest-neighbour index over unit vectors with int64 ids (scikit-learn style).

    Settings go to ``__init__``; :meth:`fit` builds from scratch and returns self; :meth:`add`
    and :meth:`remove` update in place. Fitted state: ``index_`` (the FAISS object), ``dim_``,
    ``read_only_``. Searching with scores and filters is :func:`lookalike.index.search`.
    """

    kind: ClassVar[str] = ""
    search_options: ClassVar[frozenset[str]] = frozenset()
    """Per-query options :meth:`knn` accepts besides ``selector`` (e.g. ``nprobe``)."""

    def __init__(self) -> None:
        self._sorted_ids: np.ndarray | None = None

    # ---------------------------------------------------------------- lifecycle
    def fit(self, X: Any, ids: Any) -> Self:
        """Build the index from vectors X (n, d), unit norm, with ids (n,); returns self."""
        self._build(as_unit_matrix(X, None, "vectors"))
        return self.add(ids, X)

    def add(self, ids: Any, X: Any) -> Self:
        """Add vectors X (n, d) under new ids (n,); an id already present is refused."""
        ids, X = self._checked_new(ids, X)
        if len(ids):
            self._add(ids, X)
            self._sorted_ids = None
        return self

    def remove(self, ids: Any) -> int:
        """Remove these ids (absent ones are ignored); returns how many were removed."""
        self._check_writable()
        ids = as_ids(ids, unique=False)
        present = np.unique(ids[self.contains(ids)])
        if len(present):
            self._remove(present)
            self._sorted_ids = None
        return len(present)

    # ---------------------------------------------------------------- reading
    @property
    def dim(self) -> int:
        self._check_fitted()
        return self.dim_

    def __len__(self) -> int:
        return len(self.ids())

    def ids(self) -> np.ndarray:
        """The ids in the index, sorted: shape (n,) int64 (do not modify)."""
        self._check_fitted()
        if self._sorted_ids is None:
            self._sorted_ids = np.sort(self._live_ids())
        return self._sorted_ids

    def contains(self, ids: Any) -> np.ndarray:
        """Whether each id is in the index: bool (n,)."""
        ids = np.asarray(ids, dtype=np.int64)
        stored = self.ids()
        if len(stored) == 0:
            return np.zeros(ids.shape, dtype=bool)
        pos = np.minimum(np.searchsorted(stored, ids), len(stored) - 1)
        return np.asarray(stored[pos] == ids)

    def reconstruct(self, ids: Any) -> np.ndarray:
        """The stored vectors of these ids: (n, d) float32; an absent id raises."""
        ids = as_ids(ids, unique=False)
        missing = ids[~self.contains(ids)]
        if len(missing):
            raise InvalidParameterError(f"id {int(missing[0])} is not in the index")
        if len(ids) == 0:
            return np.zeros((0, self.dim_), dtype=np.float32)
        return np.asarray(self.index_.reconstruct_batch(ids), dtype=np.float32)

    def knn(
        self, queries: np.ndarray, k: int, selector: Any = None, **options: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """FAISS-level search of unit queries (m, d) (already validated, see ``search``).

        Returns inner products (m, k) float32 and ids (m, k) int64, ``-1`` where fewer than k
        results exist. ``selector`` is a ``faiss.IDSelector`` over ids; ``options`` are the
        kind's :attr:`search_options` (None = the index default). A single query runs on one
        OpenMP thread: it cannot use more, and waking idle workers costs more than it searches
        (0.23 -> 0.13 ms for exact search over 10k vectors; under CPU contention the fork/join
        waits a scheduler tick, several ms).
        """
        return self.knn_checked(queries, k, selector, self.check_options(**options))

    def knn_checked(
        self, queries: np.ndarray, k: int, selector: Any, options: dict[str, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`knn` with ``options`` already returned by :meth:`check_options`."""
        if len(queries) != 1:
            return self._knn(queries, k, selector, **options)
        return on_one_thread(self._knn, queries, k, selector, **options)

    def check_options(self, **options: int | None) -> dict[str, int]:
        """The given (not None) search options, refusing those this kind does not have."""
        self._check_fitted()
        checked = {}
        for name, value in options.items():
            if value is None:
                continue
            if name not in self.search_options:
                unknown = sorted(n for n, v in options.items() if v is not None and n not in self.search_options)
                raise InvalidParameterError(
                    f"{unknown} do not apply to the '{self.kind}' index; it accepts "
                    f"{sorted(self.search_options) or 'no search options'}"
                )
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InvalidParameterError(f"{name} must be an integer >= 1, got {value!r}")
            checked[name] = int(value)
        return checked

    # ---------------------------------------------------------------- files
    def save(self, path: str | Path) -> None:
        """Write the index to ``path`` atomically (``path.tmp-<pid>``, fsync, rename)."""
        self._check_fitted()
        faiss = import_faiss()
        self._sync_settings()
        with atomic_path(Path(path)) as tmp:
            faiss.write_index(self.index_, str(tmp))

    @classmethod
    def load(cls, path: str | Path, mmap: bool = True) -> Self:
        """Read an index of this kind written by :meth:`save` (see the module notes on mmap)."""
        index = load_index(path, mmap=mmap)
        if not isinstance(index, cls):
            raise VectorIndexError(f"{path}: holds a '{index.kind}' index, expected '{cls.kind}'")
        return index

    @classmethod
    def from_config(cls, config: IndexConfig, centroids: Any = None) -> Self:
        """An unfitted index with the settings of ``config`` (``centroids``: ivf only)."""
        return cls()

    # ---------------------------------------------------------------- checks
    def _check_fitted(self) -> None:
        if not hasattr(self, "index_"):
            raise VectorIndexError(
                f"this {type(self).__name__} is not built yet: call fit(X, ids) or load(path)"
            )

    def _check_writable(self) -> None:
        self._check_fitted()
        if self.read_only_:
            raise VectorIndexError(
                "this index was loaded with mmap=True and is read-only: load it with mmap=False "
                "to add or remove vectors"
            )

    def _build(self, X: np.ndarray) -> None:
        """Start an empty index shaped (and, if needed, trained) on checked vectors X."""
        self.index_ = self._new_faiss(X)
        self.dim_ = int(X.shape[1])
        self.read_only_ = False
        self._sorted_ids = None

    def _checked_new(self, ids: Any, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Validated (ids, X) to add: writable index, unit rows of the right dim, new ids."""
        self._check_writable()
        X = as_unit_matrix(X, self.dim_, "vectors")
        ids = as_ids(ids, n=len(X))
        clash = ids[self.contains(ids)]
        if len(clash):
            raise InvalidParameterError(f"id {int(clash[0])} is already in the index: remove it first")
        return ids, X

    def _sync_settings(self) -> None:
        """Copy settings changed since fit (e.g. default nprobe) into ``index_`` before saving."""
        return None  # nothing to copy by default (exact has no search settings)

    def _adopt(self, raw: Any, read_only: bool) -> None:
        """Take over a loaded FAISS index (subclasses read their settings from it)."""
        self.index_ = raw
        self.dim_ = int(raw.d)
        self.read_only_ = read_only
        self._sorted_ids = None

    def _open_files(self, path: Path) -> None:
        """Open the files an index keeps beside ``path`` after loading (none by default)."""
        return None

    # ---------------------------------------------------------------- subclass hooks
    @abstractmethod
    def _new_faiss(self, X: np.ndarray) -> Any:
        """An empty FAISS index for vectors like X (n, d), trained on X if the kind needs it."""

    @abstractmethod
    def _add(self, ids: np.ndarray, X: np.ndarray) -> None:
        """Add checked, new ids and unit vectors."""

    @abstractmethod
    def _remove(self, ids: np.ndarray) -> None:
        """Remove ids, all present and unique."""

    @abstractmethod
    def _live_ids(self) -> np.ndarray:
        """All ids currently searchable, any order."""

    @abstractmethod
    def _knn(
        self, queries: np.ndarray, k: int, selector: Any, **options: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Search with a FAISS selector (or None) and checked options."""

    @classmethod
    @abstractmethod
    def _recognizes(cls, raw: Any) -> bool:
        """Whether a loaded FAISS index is one this class writes."""


@contextmanager
def one_omp_thread() -> Iterator[None]:
    """Run FAISS on one OpenMP thread inside the block (the setting is per calling thread)."""
    faiss = import_faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def on_one_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` with FAISS on one OpenMP thread (cheaper than ``one_omp_thread``)."""
    faiss = import_faiss()
    before = faiss.omp_get_max_threads()
    if before == 1:
        return fn(*args, **kwargs)
    faiss.omp_set_num_threads(1)
    try:
        return fn(*args, **kwargs)
    finally:
        faiss.omp_set_num_threads(before)


def single_thread_search(raw: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`search_raw` on one OpenMP thread (for one or a few queries)."""
    return on_one_thread(search_raw, raw, queries, k)


def search_raw(raw: Any, queries: np.ndarray, k: int, params: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """FAISS ``raw.search`` of checked C-contiguous float32 queries (m, d) without the Python
    wrapper's re-checks (a few microseconds per single query): scores (m, k), ids (m, k) int64."""
    faiss = import_faiss()
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    scores = np.empty((len(queries), k), dtype=np.float32)
    labels = np.empty((len(queries), k), dtype=np.int64)
    raw.search_c(len(queries), faiss.swig_ptr(queries), k, faiss.swig_ptr(scores), faiss.swig_ptr(labels), params)
    return scores, labels


def register(cls: type[VectorIndex]) -> type[VectorIndex]:
    """Class decorator: make ``cls`` available under ``cls.kind``."""
    _REGISTRY[cls.kind] = cls
    return cls


def index_kinds() -> list[str]:
    """Registered kinds, e.g. ``['exact', 'hnsw', 'ivf']``."""
    _import_builtin_kinds()
    return sorted(_REGISTRY)


def index_class(kind: str) -> type[VectorIndex]:
    """The class registered under ``kind``."""
    _import_builtin_kinds()
    if kind not in _REGISTRY:
        raise InvalidParameterError(f"unknown index kind {kind!r}; expected one of {sorted(_REGISTRY)}")
    return _REGISTRY[kind]


def _import_builtin_kinds() -> None:
    import lookalike.index  # noqa: F401  (its modules register exact, ivf, hnsw)


def choose_kind(n_vectors: int, config: IndexConfig | None = None) -> str:
    """The kind ``auto`` picks for a collection of ``n_vectors`` (``config.kind`` if not auto).

    Measured with benchmarks/bench_search.py (d = 256, 2-core EPYC, through :func:`search`):

    - ``exact`` up to ``exact_max`` = 20k: single-query p50 0.11 ms at 5k, 0.54 ms at 20k, then
      linear (2.1 ms at 50k, 4.2 ms at 100k, 42 ms at 1M); exact, no training, true removal.
    - ``hnsw`` up to ``hnsw_max`` = 250k: the lowest latency at recall@10 >= 0.95 (p50 0.15 ms
      at 100k), no training, incremental adds; but building grows fast (14 s at 100k, 400 s at 1M).
    - ``ivf`` beyond: at 1M it matches HNSW's p50 (0.50 ms at recall 0.95, nprobe 16), builds in
      a sixth of the time (68 s) and serves 3x the batched queries/s.
    - ``ondisk`` above ``ondisk_min`` = 2M: ``ivf`` holds every vector as float32 in RAM (2 GB
      at 2M x 256, and the library's reduced vectors as much again); IVF-PQ keeps 32 bytes per
      vector on disk plus float16 rows for re-ranking (benchmarks/bench_scale.py).
    """
    config = config or IndexConfig()
    if config.kind != "auto":
        return config.kind
    if n_vectors <= config.exact_max:
        return "exact"
    if n_vectors > config.ondisk_min:
        return "ondisk"
    return "hnsw" if n_vectors <= config.hnsw_max else "ivf"


def create_index(
    config: IndexConfig | None = None, *, n_vectors: int = 0, centroids: Any = None
) -> VectorIndex:
    """An unfitted index as ``config`` says (``auto`` resolved with ``n_vectors``).

    ``centroids`` (K, d) are used by the ``ivf`` kind only (from a clustering run).
    """
    config = config or IndexConfig()
    kind = choose_kind(n_vectors, config)
    return index_class(kind).from_config(config, centroids=centroids)


def load_index(path: str | Path, mmap: bool = True) -> VectorIndex:
    """Read any index written by :meth:`VectorIndex.save`; ``mmap=True`` maps it read-only."""
    path = Path(path)
    if not path.is_file():
        raise VectorIndexError(f"{path}: no index file there")
    faiss = import_faiss()
    try:
        raw = faiss.read_index(str(path), _read_flags(path, mmap))
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise VectorIndexError(f"{path}: not a readable FAISS index ({reason})") from exc
    for cls in (index_class(kind) for kind in index_kinds()):
        if cls._recognizes(raw):
            index = cls()
            index._adopt(raw, read_only=mmap)
            index._open_files(path)
            return index
    raise VectorIndexError(f"{path}: a FAISS {type(raw).__name__} is not a lookalike index")


_IVF_PQ_HEADS = (b"IwPQ", b"IxPT")
"""FAISS headers that may refer to inverted lists in a file of their own (``ondisk``)."""


def _read_flags(path: Path, mmap: bool) -> int:
    """FAISS read flags: such headers are read from the file so that their lists file is found
    beside it (``IO_FLAG_ONDISK_SAME_DIR``, which cannot combine with ``IO_FLAG_MMAP_IFC``);
    the others are mapped when ``mmap``."""
    faiss = import_faiss()
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head in _IVF_PQ_HEADS:  # stored lists are never written (a save writes new ones)
        return int(faiss.IO_FLAG_ONDISK_SAME_DIR | faiss.IO_FLAG_READ_ONLY)
    return int(faiss.IO_FLAG_MMAP_IFC) if mmap else 0


def default_nlist(n_vectors: int) -> int:
    """IVF cluster count for n vectors: ``4 * sqrt(n)``, at most ``n / 39`` (FAISS's minimum
    training points per centroid), at least 1."""
    return max(1, min(round(4 * math.sqrt(n_vectors)), n_vectors // 39))
