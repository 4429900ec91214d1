"""Classification page: stored classifiers' metrics, confusion matrix, predict an uploaded image."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st

from lookalike.app import charts
from lookalike.app.common import gallery, missing, short_name
from lookalike.app.search_page import UPLOAD_TYPES

if TYPE_CHECKING:
    from lookalike.library import Library

MISCLASSIFIED_SHOWN = 12
"""Most misclassified images shown."""


def render(lib: Library) -> None:
    from lookalike.classify.train import model_info, stored_models

    st.header("Classification")
    models = stored_models(lib.store)
    if not models:
        if lib.status().labelled_files == 0:
            missing("labels", f"lookalike index FOLDER --library {lib.folder} --labels folder")
        missing("trained classifier", f"lookalike classify train --library {lib.folder} --model svm")
        return
    model = st.selectbox("Model", models, key="classify_model")
    report = model_info(lib.store, model).get("report", {})
    _metrics(report)
    _misclassified(lib, model)
    _predict(lib, model)


def _metrics(report: dict[str, Any]) -> None:
    validation = report.get("validation") or {}
    cols = st.columns(4)
    for col, name in zip(cols, ("accuracy", "balanced_accuracy", "macro_f1")):
        if name in validation:
            col.metric(name.replace("_", " "), f"{validation[name]:.3f}")
    cols[3].metric("train / validation images", f"{report.get('n_train', '?')} / {report.get('n_validation', '?')}")
    projection = (report.get("best_params") or {}).get("projection")
    if projection:
        st.caption(f"Classified after a {projection} label projection, learned on the training images of each split only.")
    labels = validation.get("labels") or []
    if labels and validation.get("confusion"):
        st.plotly_chart(
            charts.heatmap(np.asarray(validation["confusion"]), labels, "Confusion matrix (validation)"),
            key="classify_confusion",
        )
    per_class = validation.get("per_class") or {}
    if per_class:
        import pandas as pd

        st.dataframe(
            pd.DataFrame([{"class": k, **v} for k, v in per_class.items()]), hide_index=True, key="classify_per_class"
        )


def _misclassified(lib: Library, model: str) -> None:
    """Labelled images whose label the model disagrees with (training images included)."""
    from lookalike.classify.train import labelled_vectors, load_classifier
    from lookalike.cluster.runs import image_paths

    data = labelled_vectors(lib.store)
    if data.labels.size == 0:
        return
    predicted = np.asarray(load_classifier(lib.store, model).classifier.predict(data.vectors)).astype(str)
    wrong = np.flatnonzero(predicted != data.labels)
    st.subheader("Misclassified examples")
    st.caption(
        f"{wrong.size} of {data.labels.size} labelled images get another class than their label "
        "(all labelled images, including those the model was trained on)"
    )
    shown = wrong[:MISCLASSIFIED_SHOWN]
    paths = image_paths(lib.store, [int(data.ids[i]) for i in shown])
    items = [
        (
            paths[int(data.ids[i])],
            f"{short_name(paths[int(data.ids[i])])}: label {data.labels[i]}, predicted {predicted[i]}",
        )
        for i in shown
        if int(data.ids[i]) in paths
    ]
    gallery(lib, items)


def _predict(lib: Library, model: str) -> None:
    from lookalike.classify.train import predict_files

    st.subheader("Predict")
    upload = st.file_uploader("Image to classify", type=UPLOAD_TYPES, key="classify_upload")
    if upload is None:
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(upload.name).name
        path.write_bytes(upload.getvalue())
        prediction = predict_files(lib.store, [path], model=model, k=5)[0]
    if prediction.error:
        st.error(f"Cannot read the upload {upload.name!r} as an image: {prediction.error}")
        return
    top, score = prediction.classes[0]
    st.success(f"{upload.name}: **{top}** ({score:.2f})")
    import pandas as pd

    st.dataframe(pd.DataFrame(prediction.classes, columns=["class", "score"]), hide_index=True, key="classify_top")
