"""L2 + PCA reduction: the estimator (``estimator``) and a library's stored reducer (``stored``)."""

from lookalike.reduce.estimator import Reducer

__all__ = ["Reducer"]
