"""Classification quality for the report: each model on one seeded stratified split.

Uses :mod:`lookalike.classify.estimator`'s pieces directly (``stratified_split``, ``VectorClassifier``,
``classification_metrics``) with :class:`~lookalike.config.ClassifyConfig` defaults, so models the
user trained with ``lookalike classify train`` are never touched. Large libraries are first
reduced to a stratified sample of ``classify_sample`` images (the hyperparameter searches are
k-fold grid searches on the training part).
"""

from __future__ import annotations

import time
from dataclasses import asdict, fields
from typing import Any

import numpy as np

from lookalike.classify.estimator import VectorClassifier, classification_metrics, stratified_split
from lookalike.config import ClassifyConfig
from lookalike.progress import NoProgress, Progress


def classifier(model: str, config: ClassifyConfig) -> VectorClassifier:
    """An unfitted ``model`` with every setting ``config`` shares with :class:`VectorClassifier`."""
    shared = set(VectorClassifier().get_params()) & {f.name for f in fields(ClassifyConfig)}
    settings = {name: getattr(config, name) for name in shared}
    settings["cv"] = config.cv or ClassifyConfig.cv
    return VectorClassifier(model).set_params(**settings)


def sample_rows(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted rows (m,) of a stratified seeded sample of about ``size`` of ``labels`` (n,); all when n <= size."""
    if labels.size <= size:
        return np.arange(labels.size)
    return stratified_split(labels, size / labels.size, seed)[1]


def evaluate_models(x: np.ndarray, y: np.ndarray, models: tuple[str, ...], config: ClassifyConfig,
                    progress: Progress | None = None) -> dict[str, Any]:
    """Train each model on a stratified split of ``x`` (n, d), ``y`` (n,) str; score on the rest.

    Returns the split and, per model, the metrics of ``ClassificationMetrics.to_dict`` plus the
    chosen hyperparameters and seconds.
    """
    progress = progress or NoProgress()
    train, val = stratified_split(y, config.test_size, config.seed)
    results: dict[str, Any] = {}
    progress.phase("classifiers", len(models), unit="models")
    for model in models:
        start = time.perf_counter()
        fitted = classifier(model, config).fit(x[train], y[train])
        metrics = classification_metrics(y[val], fitted.predict(x[val]), fitted.classes_)
        results[model] = {**metrics.to_dict(), "best_params": fitted.best_params_,
                          "seconds": round(time.perf_counter() - start, 3)}
        progress.advance()
    return {"n_train": int(train.size), "n_validation": int(val.size), "config": _config_dict(config),
            "models": results}


def _config_dict(config: ClassifyConfig) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
