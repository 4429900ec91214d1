"""``report.md``: a short page that reads on its own — what was measured, the headline numbers,
tables per clustering method and per classifier, the figures, and what was sampled or skipped."""

from __future__ import annotations

from typing import Any


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_num(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def headline(report: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, value) of the headline numbers: retrieval, best clustering agreement, best classifier."""
    items: list[tuple[str, Any]] = []
    retrieval = report["retrieval"]
    for name, text in (("precision_at_1", "precision@1"), ("precision_at_10", "precision@10"), ("map_at_10", "mAP@10")):
        if name in retrieval:
            items.append((f"retrieval {text}", retrieval[name]))
    kmeans = report["clustering"].get("methods", {}).get("kmeans", {})
    if "metrics" in kmeans:
        external = kmeans["metrics"].get("external") or {}
        items.append((f"K-Means (K = {kmeans['n_clusters']}) silhouette", kmeans["metrics"]["silhouette"]))
        if external:
            items += [("K-Means NMI", external["nmi"]), ("K-Means ARI", external["ari"])]
    models = report["classification"].get("models", {})
    if models:
        best = max(models, key=lambda m: models[m]["accuracy"])
        items.append((f"best classifier accuracy ({best})", models[best]["accuracy"]))
    return items


def render(report: dict[str, Any]) -> str:
    """The whole page as Markdown text."""
    info, sizes = report["library"], report["sizes"]
    mb = sizes["bytes_on_disk"]["total"] / 1e6
    lines = [
        f"# Evaluation of `{info['name']}`", "",
        f"{info['images']:,} images embedded with **{info['backbone']}** ({info['embedding_dim']}-d, weights "
        f"sha256 `{info['weights_sha256'][:12]}…`), reduced by PCA to {info['reduced_dim']} dimensions; "
        f"{info['labelled_images']:,} labelled images in {info['labels']} classes; {mb:,.1f} MB on disk. "
        f"Generated {report['generated']} with seed {report['parameters']['seed']}.", "",
        "![summary](figures/summary.png)", "", "## Headline numbers", "",
        *_table(["measure", "value"], [list(item) for item in headline(report)]),
    ]
    lines += _retrieval(report["retrieval"]) + _clustering(report["clustering"])
    lines += _classification(report["classification"]) + _maps(report) + _notes(report)
    return "\n".join(lines).rstrip() + "\n"


def _retrieval(section: dict[str, Any]) -> list[str]:
    lines = ["## Retrieval", ""]
    if "skipped" in section:
        return lines + [f"Skipped: {section['skipped']}.", ""]
    queries = (f"a seeded sample of {section['queries']:,} of the {section['labelled_images']:,} labelled images"
               if section["sampled"] else f"all {section['queries']:,} labelled images")
    lines += [f"Leave-one-out with {queries} as queries (exact search over every image): a result is relevant "
              "when it has the query's label. Recall@k is the share of the query's whole class found in the first "
              "k, so it stays small when classes hold many more than k images.", ""]
    names = [n for n in section if n.startswith(("precision_at_", "recall_at_", "map_at_"))]
    lines += _table([n.replace("_at_", "@").replace("map", "mAP") for n in names], [[section[n] for n in names]])
    return lines + ["![precision@k](figures/precision_at_k.png)", ""]


def _clustering(section: dict[str, Any]) -> list[str]:
    lines = ["## Clustering", ""]
    if "skipped" in section:
        return lines + [f"Skipped: {section['skipped']}.", ""]
    lines += [f"K = {section['k']}: {section['k_reason']}. Nothing was stored in the library.", ""]
    rows = []
    for method, entry in section["methods"].items():
        if "skipped" in entry:
            rows.append([method, "skipped", *["–"] * 7])
            continue
        m, ext = entry["metrics"], entry["metrics"].get("external") or {}
        rows.append([method, entry["n_clusters"], _points(entry, m), m["silhouette"], m["davies_bouldin"],
                     m["calinski_harabasz"], ext.get("nmi"), ext.get("ari"), ext.get("purity")])
    lines += _table(["method", "clusters", "points (noise)", "silhouette", "Davies–Bouldin", "Calinski–Harabasz",
                     "NMI", "ARI", "purity"], rows)
    if section["sweep"]:
        lines += ["![elbow and silhouette vs K](figures/k_sweep.png)", ""]
    return lines


def _points(entry: dict[str, Any], metrics: dict[str, Any]) -> str:
    sampled = " sampled" if entry.get("sampled") else ""
    return f"{entry['n_points']:,}{sampled} ({metrics['n_noise']:,})"


def _classification(section: dict[str, Any]) -> list[str]:
    lines = ["## Classification", ""]
    if "skipped" in section:
        return lines + [f"Skipped: {section['skipped']}.", ""]
    used = f"a stratified sample of {section['n_used']:,}" if section["sampled"] else f"all {section['n_used']:,}"
    lines += [f"Trained on {section['n_train']:,} and validated on {section['n_validation']:,} images "
              f"({used} of {section['n_labelled']:,} labelled; stratified split, test size "
              f"{section['config']['test_size']}, seed {section['config']['seed']}).", ""]
    rows = [[m, e["accuracy"], e["balanced_accuracy"], e["macro_f1"], _params(e["best_params"]), e["seconds"]]
            for m, e in section["models"].items()]
    lines += _table(["model", "accuracy", "balanced accuracy", "macro-F1", "chosen settings", "seconds"], rows)
    best = max(section["models"], key=lambda m: section["models"][m]["accuracy"])
    lines += _per_class(section["models"][best], best)
    figures = " · ".join(f"[{m}](figures/confusion_{m}.png)" for m in section["models"])
    return lines + [f"![confusion matrix of {best}](figures/confusion_{best}.png)", "",
                    f"Confusion matrices: {figures}.", ""]


def _params(params: dict[str, Any]) -> str:
    shown = {k: v for k, v in params.items() if k not in ("cv_accuracy", "gamma")}
    return ", ".join(f"{k}={_num(v, 3) if isinstance(v, float) else v}" for k, v in shown.items())


def _per_class(entry: dict[str, Any], model: str) -> list[str]:
    rows = [[name, c["precision"], c["recall"], c["f1"], c["support"]] for name, c in entry["per_class"].items()]
    return [f"Per class, best model ({model}):", ""] + _table(["class", "precision", "recall", "F1", "images"], rows)


def _maps(report: dict[str, Any]) -> list[str]:
    info = report["maps"]
    sample = f"a seeded sample of {info['points']:,}" if info["sampled"] else f"all {info['points']:,}"
    drawn = report.get("figures", {})
    maps = [(method, title) for method, title in (("pca", "PCA"), ("tsne", "t-SNE")) if f"map_{method}" in drawn]
    if not maps:
        return ["## 2D maps", "", f"No map: too few images ({info['points']})."]
    links = " · ".join(f"[{title}]({drawn[f'map_{method}_html']})" for method, title in maps)
    lines = ["## 2D maps", "", f"{' and '.join(t for _, t in maps)} of {sample} points (PCA fitted on every image), "
             f"coloured by label and by K-Means cluster. Interactive versions (hover shows the file): {links}.", ""]
    return lines + [line for method, title in maps for line in (f"![{title} map]({drawn[f'map_{method}']})", "")]


def _notes(report: dict[str, Any]) -> list[str]:
    lines = ["## Notes", ""] + [f"- {note}" for note in report["notes"]]
    timings = ", ".join(f"{name.replace('_', ' ')} {seconds:.1f} s" for name, seconds in report["timings"].items())
    versions = ", ".join(f"{name} {version}" for name, version in report["versions"].items())
    lines += [f"- Time per stage: {timings}.", f"- Versions: {versions}.",
              "- Every number, parameter and seed is in `report.json`.", ""]
    return lines
