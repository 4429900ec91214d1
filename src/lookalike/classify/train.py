"""Classifiers of a library: labelled vectors in, stored models out, predictions on image files.

Labels live on files (``files.label``): from class subfolders (``lookalike index --labels
folder``, which is also how an exported dataset is labelled) or from a CSV (:func:`import_labels`).
An image (one content, possibly several files) takes the label its labelled files agree on;
images without a label, and images whose files disagree, are left out of training and counted.

Each trained model is stored as ``models/classifier-<model>.joblib`` (written atomically),
stamped with the backbone name, the weights' sha256 and the reducer fingerprint it was trained
on; ``classifier-<model>.json`` beside it holds the same stamp and the metrics, readable without
unpickling. A model whose stamp differs from the library's current backbone or reducer (PCA
refitted since) is refused with :class:`~lookalike.errors.StaleModelError`. joblib files are
pickles: load only models from libraries you trust.

Training: a stratified, seeded train/validation split; hyperparameters chosen by k-fold search on
the training part; validation metrics; k-fold cross-validation over all labelled images with the
chosen hyperparameters; finally the stored model is refitted on every labelled image.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.config import CLASSIFY_MODELS, ClassifyConfig
from lookalike.embed.query import embed_files
from lookalike.errors import InvalidParameterError, LibraryError, LibraryFormatError, StaleModelError
from lookalike.reduce.stored import reduced_vectors, require_reducer, stored_reducer
from lookalike.store.atomic import atomic_path, write_bytes
from lookalike.store.labels import image_labels, set_file_labels
from lookalike.store.manifest import now

if TYPE_CHECKING:
    from lookalike.classify.estimator import ClassificationMetrics, CrossValidation, VectorClassifier
    from lookalike.store.library_store import LibraryStore

MODELS_DIR = Path("models")
FORMAT_VERSION = 1


# -- labelled vectors -----------------------------------------------------------------------------
@dataclass(frozen=True)
class LabelledVectors:
    """The embedded images that have a label: ``ids`` (n,), ``vectors`` (n, d), ``labels`` (n,) str."""

    ids: np.ndarray
    vectors: np.ndarray
    labels: np.ndarray
    reducer_fingerprint: str
    n_embedded: int
    n_unlabelled: int
    n_conflicting: int
    dropped_classes: dict[str, int] = field(default_factory=dict)


def labelled_vectors(store: LibraryStore) -> LabelledVectors:
    """Reduced vectors and labels of every labelled embedded image (fits PCA on first use)."""
    reduced = reduced_vectors(store)
    known = image_labels(store.catalog)
    ids = np.asarray(reduced.ids, dtype=np.int64)
    keep = np.array([int(i) in known.labels for i in ids], dtype=bool)
    labels = np.array([known.labels[int(i)] for i in ids[keep]], dtype=str)
    conflicting = sum(1 for i in ids.tolist() if i in known.conflicting)
    return LabelledVectors(
        ids=ids[keep],
        vectors=np.asarray(reduced.vectors)[keep],
        labels=labels,
        reducer_fingerprint=reduced.reducer_fingerprint,
        n_embedded=int(ids.size),
        n_unlabelled=int(ids.size - keep.sum()) - conflicting,
        n_conflicting=conflicting,
    )


def usable(data: LabelledVectors, config: ClassifyConfig, where: Path | str) -> LabelledVectors:
    """``data`` checked for training: labelled images, >= 2 classes, no class too small.

    Classes under ``config.min_class_images`` are an error naming them, or, with
    ``drop_small_classes``, left out and listed in ``dropped_classes``.
    """
    if data.labels.size == 0:
        raise InvalidParameterError(
            f"{where}: none of the {data.n_embedded} embedded images has a label "
            f"({data.n_conflicting} with conflicting labels); label them with `lookalike index FOLDER "
            f"--library {where} --labels folder` (class subfolders) or `lookalike classify labels CSV`"
        )
    counts = Counter(data.labels.tolist())
    small = {c: n for c, n in sorted(counts.items()) if n < config.min_class_images}
    if small and not config.drop_small_classes:
        listed = ", ".join(f"{c!r} ({n})" for c, n in list(small.items())[:8])
        raise InvalidParameterError(
            f"{where}: {len(small)} class(es) have fewer than {config.min_class_images} labelled images, "
            f"too few to train and validate: {listed}; add images or pass --drop-small-classes"
        )
    keep = ~np.isin(data.labels, list(small))
    remaining = sorted(set(counts) - set(small))
    if len(remaining) < 2:
        raise InvalidParameterError(
            f"{where}: need at least 2 classes with {config.min_class_images}+ labelled images to train a "
            f"classifier; found {len(remaining)}: {remaining} (of {len(counts)} label(s) in total)"
        )
    return replace(data, ids=data.ids[keep], vectors=data.vectors[keep], labels=data.labels[keep],
                   dropped_classes={**data.dropped_classes, **small})


# -- training -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainReport:
    """One trained and stored model: validation metrics, cross-validation, what was used."""

    model: str
    path: Path
    metrics: ClassificationMetrics
    cross_validation: CrossValidation | None
    best_params: dict[str, Any]
    n_train: int
    n_validation: int
    data: LabelledVectors
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no arrays of vectors)."""
        from lookalike.classify.estimator import PROBABILITIES

        data = self.data
        return {
            "model": self.model, "probabilities": PROBABILITIES[self.model], "best_params": self.best_params,
            "validation": self.metrics.to_dict(),
            "cross_validation": self.cross_validation.summary() if self.cross_validation else None,
            "n_train": self.n_train, "n_validation": self.n_validation, "n_labelled": int(data.labels.size),
            "n_embedded": data.n_embedded, "n_unlabelled": data.n_unlabelled,
            "n_conflicting": data.n_conflicting, "dropped_classes": data.dropped_classes,
            "seconds": round(self.seconds, 3),
        }


def train(store: LibraryStore, model: str, config: ClassifyConfig | None = None,
          data: LabelledVectors | None = None) -> TrainReport:
    """Train, validate, cross-validate and store one ``model`` of ``CLASSIFY_MODELS``.

    ``data`` (from :func:`labelled_vectors`) saves gathering it again when training several.
    """
    from lookalike.classify.estimator import classification_metrics, cross_validate, stratified_split

    if model not in CLASSIFY_MODELS:
        raise InvalidParameterError(f"model must be one of {CLASSIFY_MODELS}; got {model!r}")
    config = config or ClassifyConfig()
    start = time.perf_counter()
    data = usable(data if data is not None else labelled_vectors(store), config, store.folder)
    x, y = data.vectors, data.labels
    train_rows, val_rows = stratified_split(y, config.test_size, config.seed)
    chosen = configured_classifier(model, config).fit(x[train_rows], y[train_rows])
    metrics = classification_metrics(y[val_rows], chosen.predict(x[val_rows]), chosen.classes_)
    fixed = fixed_params(model, chosen.best_params_)
    folds = (
        cross_validate(lambda: configured_classifier(model, config, **fixed), x, y, folds=config.cv, seed=config.seed)
        if config.cv else None
    )
    final = configured_classifier(model, config, **fixed).fit(x, y)
    report = TrainReport(model, model_path(store, model), metrics, folds, chosen.best_params_,
                         int(train_rows.size), int(val_rows.size), data, time.perf_counter() - start)
    _store(store, final, report)
    return report


def configured_classifier(model: str, config: ClassifyConfig, **fixed: Any) -> VectorClassifier:
    """A classifier of ``model`` with the settings of ``config``; ``fixed`` overrides some (e.g. pinned grids)."""
    from lookalike.classify.estimator import VectorClassifier

    settings = {
        "seed": config.seed, "cv": config.cv or ClassifyConfig.cv, "svm_C": config.svm_C, "svm_gamma": config.svm_gamma,
        "logreg_C": config.logreg_C, "n_neighbors": config.n_neighbors, "n_estimators": config.n_estimators,
        "calibration_folds": config.calibration_folds, "projection": config.projection,
    }
    return VectorClassifier(model, **{**settings, **fixed})


def fixed_params(model: str, best: dict[str, Any]) -> dict[str, Any]:
    """The searched hyperparameters pinned to the chosen values (so refits do not search again)."""
    if model == "svm":
        return {"svm_C": (best["C"],), "svm_gamma": (best["gamma_factor"],)}
    if model == "logreg":
        return {"logreg_C": (best["C"],)}
    return {}


# -- storage --------------------------------------------------------------------------------------
def model_path(store: LibraryStore, model: str) -> Path:
    """Where ``model`` is stored: ``<library>/models/classifier-<model>.joblib``."""
    return store.folder / MODELS_DIR / f"classifier-{model}.joblib"


def _stamp(store: LibraryStore, reducer_fingerprint: str) -> dict[str, Any]:
    embed = store.manifest.embed
    return {"backbone": embed.backbone, "weights_sha256": embed.weights_sha256,
            "reducer_fingerprint": reducer_fingerprint}


def _store(store: LibraryStore, classifier: VectorClassifier, report: TrainReport) -> None:
    import joblib
    import sklearn

    info = {
        "format_version": FORMAT_VERSION, "model": report.model, "trained": now(),
        "sklearn_version": sklearn.__version__, "classes": [str(c) for c in classifier.classes_],
        **_stamp(store, report.data.reducer_fingerprint), "report": report.to_dict(),
    }
    with atomic_path(report.path) as tmp:
        joblib.dump({"info": info, "classifier": classifier}, tmp)
    write_bytes(report.path.with_suffix(".json"), json.dumps(info, indent=2).encode())


def stored_models(store: LibraryStore) -> list[str]:
    """Names of the classifiers stored in the library, in ``CLASSIFY_MODELS`` order."""
    return [m for m in CLASSIFY_MODELS if model_path(store, m).is_file()]


def model_info(store: LibraryStore, model: str) -> dict[str, Any]:
    """The stamp and training report of a stored model (from its JSON file; no unpickling)."""
    path = model_path(store, model).with_suffix(".json")
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise _missing(store, model) from None
    except (OSError, ValueError) as exc:
        raise LibraryFormatError(f"{path}: unreadable ({exc})") from exc


@dataclass(frozen=True)
class StoredClassifier:
    """A loaded classifier with its stamp (``info``: backbone, weights, reducer, report)."""

    model: str
    classifier: VectorClassifier
    info: dict[str, Any]


def load_classifier(store: LibraryStore, model: str | None = None) -> StoredClassifier:
    """Load a stored classifier, refusing it when stale; ``None`` picks :func:`default_model`."""
    import joblib

    model = model or default_model(store)
    if model not in CLASSIFY_MODELS:
        raise InvalidParameterError(f"model must be one of {CLASSIFY_MODELS}; got {model!r}")
    path = model_path(store, model)
    if not path.is_file():
        raise _missing(store, model)
    try:
        stored = joblib.load(path)
        info, classifier = stored["info"], stored["classifier"]
    except Exception as exc:  # unpickling raises anything: report which file
        raise LibraryFormatError(f"{path}: unreadable classifier ({type(exc).__name__}: {exc})") from exc
    if info.get("format_version") != FORMAT_VERSION:
        raise LibraryFormatError(f"{path}: format version {info.get('format_version')}, expected {FORMAT_VERSION}")
    _check_fresh(store, model, info)
    return StoredClassifier(model, classifier, info)


def default_model(store: LibraryStore) -> str:
    """The stored model with the best validation accuracy (ties: ``CLASSIFY_MODELS`` order)."""
    models = stored_models(store)
    if not models:
        raise LibraryError(
            f"{store.folder}: no trained classifier; train one with "
            f"`lookalike classify train --library {store.folder} --model svm`"
        )
    scores = {m: model_info(store, m).get("report", {}).get("validation", {}).get("accuracy", 0.0) for m in models}
    return max(models, key=lambda m: (scores[m], -models.index(m)))


def _check_fresh(store: LibraryStore, model: str, info: dict[str, Any]) -> None:
    reducer = stored_reducer(store)
    current = _stamp(store, reducer.fingerprint if reducer is not None else "none")
    retrain = f"retrain it: `lookalike classify train --library {store.folder} --model {model}`"
    for key, what in (("backbone", "backbone"), ("weights_sha256", "backbone weights"),
                      ("reducer_fingerprint", "PCA")):
        if info.get(key) != current[key]:
            since = " (PCA refitted since)" if key == "reducer_fingerprint" else ""
            raise StaleModelError(
                f"{model_path(store, model)}: the {model} classifier was trained on {what} "
                f"{str(info.get(key))[:16]}, the library now has {current[key][:16]}{since}; {retrain}"
            )


def _missing(store: LibraryStore, model: str) -> LibraryError:
    return LibraryError(
        f"{store.folder}: no trained '{model}' classifier (have: {stored_models(store) or 'none'}); train it with "
        f"`lookalike classify train --library {store.folder} --model {model}`"
    )


# -- prediction -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Prediction:
    """Top-k classes of one image file by ``model``, best first; ``error`` says why there are none."""

    path: Path
    model: str
    classes: list[tuple[str, float]]
    error: str | None = None


def predict_files(store: LibraryStore, paths: list[Path | str], model: str | None = None, k: int = 5,
                  batch_size: int = 32) -> list[Prediction]:
    """Embed, reduce and classify each image file (any file, inside the library or not), in batches."""
    stored = load_classifier(store, model)
    results: list[Prediction] = []
    for start in range(0, len(paths), batch_size):
        results += _predict_batch(store, stored, [Path(p) for p in paths[start : start + batch_size]], k)
    return results


def _predict_batch(store: LibraryStore, stored: StoredClassifier, paths: list[Path], k: int) -> list[Prediction]:
    raw, good, failed = embed_files(store, paths)
    results = {i: Prediction(paths[i], stored.model, [], reason) for i, reason in failed.items()}
    if good:
        labels, proba = stored.classifier.top_k(require_reducer(store).transform(raw), k)
        for row, i in enumerate(good):
            results[i] = Prediction(paths[i], stored.model, list(zip(map(str, labels[row]), map(float, proba[row]))))
    return [results[i] for i in range(len(paths))]


# -- labels from a CSV ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LabelImport:
    """What a labels CSV did: files labelled (changed or already so), paths unknown, bad rows."""

    rows: int
    changed: int
    unchanged: int
    unknown: list[str]
    bad: list[tuple[int, str]]


def import_labels(store: LibraryStore, csv_path: Path | str) -> LabelImport:
    """Set ``files.label`` from a ``path,label`` CSV (optional header; relative paths are relative
    to the CSV's folder). Unknown paths and bad rows are returned, never silently dropped; a file
    with no usable row at all is an error.
    """
    if store.readonly:
        raise InvalidParameterError(f"{store.folder} was opened read-only; labels cannot be written")
    csv_path = Path(csv_path).expanduser()
    wanted, bad, rows = _read_labels_csv(csv_path)
    if not wanted:
        first = f"; first: line {bad[0][0]}: {bad[0][1]}" if bad else ""
        raise InvalidParameterError(f"{csv_path}: no usable 'path,label' rows ({len(bad)} bad){first}")
    changed, unchanged, unknown = set_file_labels(store.catalog, wanted)
    return LabelImport(rows, changed, unchanged, unknown, bad)


def _read_labels_csv(csv_path: Path) -> tuple[dict[str, str], list[tuple[int, str]], int]:
    """({absolute path: label}, [(line, reason)], data rows) of a labels CSV."""
    import csv

    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidParameterError(f"{csv_path}: cannot read the labels CSV ({exc})") from exc
    wanted: dict[str, str] = {}
    first_line: dict[str, int] = {}
    bad: list[tuple[int, str]] = []
    rows = 0
    for line, fields in enumerate(csv.reader(text.splitlines()), start=1):
        if not fields or (line == 1 and [f.strip().lower() for f in fields] == ["path", "label"]):
            continue
        rows += 1
        path, label, problem = _parse_row(fields, csv_path.parent)
        if problem is None and path in wanted and wanted[path] != label:
            problem = f"label {label!r} conflicts with {wanted[path]!r} on line {first_line[path]}"
        if problem is not None:
            bad.append((line, problem))
            continue
        wanted[path], first_line[path] = label, first_line.get(path, line)
    return wanted, bad, rows


def _parse_row(fields: list[str], base: Path) -> tuple[str, str, str | None]:
    if len(fields) != 2:
        return "", "", f"expected 2 fields (path,label), got {len(fields)}"
    path, label = fields[0].strip(), fields[1].strip()
    if not path or not label:
        return "", "", "empty path" if not path else "empty label"
    return os.path.abspath(base / Path(path).expanduser()), label, None
