"""One evaluation report of a library (``lookalike evaluate``): retrieval, clustering and
classification quality, timings, sizes, parameters, versions and seeds, as ``report.json``,
figures (PNG, and interactive HTML maps) and a short ``report.md``.

Layout: :mod:`~lookalike.report.data` reads the library; :mod:`~lookalike.report.retrieval`,
:mod:`~lookalike.report.clusters`, :mod:`~lookalike.report.classification` and
:mod:`~lookalike.report.projection` compute on arrays; :mod:`~lookalike.report.collect` runs them
and times each stage; :mod:`~lookalike.report.figures`, :mod:`~lookalike.report.interactive` and
:mod:`~lookalike.report.markdown` draw and write; :mod:`~lookalike.report.write` puts the folder
together. Nothing is stored in the library (its PCA is fitted only when it has none yet).
"""

from __future__ import annotations

from lookalike.report.settings import ReportConfig, parse_k_range

__all__ = ["ReportConfig", "parse_k_range", "write_report"]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    if name == "write_report":
        from lookalike.report.write import write_report

        return write_report
    raise AttributeError(name)
