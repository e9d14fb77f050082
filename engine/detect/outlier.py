"""Unsupervised outlier scorers behind one small interface: fit(X, weight) and raw(X).

Higher raw score = more outlying. The Detector turns raw scores into percentiles of the training
scores, so no scorer needs a contamination rate (PyOD's default of 0.1 would flag a tenth of
all flows). Every scorer takes deduplicated rows with counts as weights, and none ever returns
NaN or inf. Only numpy arrays, builtins and sklearn/pyod estimators are stored, so skops can
save them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import NearestNeighbors

from engine.config.settings import OUTLIERS
from engine.core.errors import UserError

PYOD_HINT = "pip install 'flowtriage[pyod]'"


def _pyod(kind: str) -> Any:
    """PyOD's class for `kind`; PyOD is an optional extra (it pulls numba, llvmlite and
    matplotlib), so it is imported only by the detectors that need it."""
    try:
        if kind == "abod":  # late: PyOD is an optional dependency (the [pyod] extra)
            from pyod.models.abod import ABOD

            return ABOD
        from pyod.models.hbos import HBOS  # late: optional dependency, as above

        return HBOS
    except ImportError:
        raise UserError(
            f"the outlier detector {kind!r} needs PyOD, which is not installed: {PYOD_HINT} "
            "(or choose outlier = \"iforest\" or \"knn\")"
        ) from None


def _finite(scores: np.ndarray, fill: float) -> np.ndarray:
    return np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=fill, posinf=fill, neginf=0.0)


class IForestOutlier:
    """sklearn IsolationForest: fast, no distances, tolerant of many features."""

    def __init__(self, n_estimators: int = 50, max_samples: int = 256, random_state: int = 0):
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X: np.ndarray, weight: np.ndarray) -> IForestOutlier:
        self.model_ = IsolationForest(
            n_estimators=self.n_estimators, max_samples=min(self.max_samples, len(X)),
            random_state=self.random_state,
        ).fit(X, sample_weight=weight)
        return self

    def raw(self, X: np.ndarray) -> np.ndarray:
        return _finite(-self.model_.score_samples(X), 1.0)


class KNNOutlier:
    """Distance to the k-th nearest training flow, counting duplicates by weight.

    The same score as PyOD KNN(method='largest') on the full data, computed on deduplicated
    rows: exact duplicates defeat kd-tree pruning and make the naive version 15-25x slower.
    """

    def __init__(self, n_neighbors: int = 5, max_reference: int = 20000, random_state: int = 0):
        self.n_neighbors = n_neighbors
        self.max_reference = max_reference
        self.random_state = random_state

    def fit(self, X: np.ndarray, weight: np.ndarray) -> KNNOutlier:
        if len(X) > self.max_reference:
            rng = np.random.default_rng(self.random_state)
            keep = rng.choice(len(X), self.max_reference, replace=False, p=weight / weight.sum())
            X, weight = X[keep], weight[keep]
        self.counts_ = np.asarray(weight, dtype=np.float64)
        self.nn_ = NearestNeighbors(n_neighbors=min(self.n_neighbors, len(X))).fit(X)
        return self

    def raw(self, X: np.ndarray) -> np.ndarray:
        dist, idx = self.nn_.kneighbors(X)
        cum = np.cumsum(self.counts_[idx], axis=1)
        # the first neighbour at which the duplicate counts reach k; else the farthest queried
        at = np.minimum((cum < self.n_neighbors).sum(axis=1), dist.shape[1] - 1)
        return _finite(dist[np.arange(len(X)), at], float(dist.max(initial=0.0)))


class ABODOutlier:
    """PyOD ABOD(method='fast') on a deduplicated subsample (it returns NaN on duplicates)."""

    def __init__(self, n_neighbors: int = 10, max_reference: int = 3000, random_state: int = 0):
        self.n_neighbors = n_neighbors
        self.max_reference = max_reference
        self.random_state = random_state

    def fit(self, X: np.ndarray, weight: np.ndarray) -> ABODOutlier:
        ABOD = _pyod("abod")
        if len(X) > self.max_reference:
            rng = np.random.default_rng(self.random_state)
            keep = rng.choice(len(X), self.max_reference, replace=False, p=weight / weight.sum())
            X = X[keep]
        self.model_ = ABOD(method="fast", n_neighbors=min(self.n_neighbors, len(X) - 1),
                           contamination=0.001).fit(X.astype(np.float64))
        train = _finite(self.model_.decision_scores_, 0.0)
        self.fill_ = float(train.max(initial=0.0))
        return self

    def raw(self, X: np.ndarray) -> np.ndarray:
        return _finite(self.model_.decision_function(X.astype(np.float64)), self.fill_)


class HBOSOutlier:
    """PyOD HBOS: per-feature histograms, the fastest scorer (about a million rows/s)."""

    def __init__(self, n_bins: int = 20):
        self.n_bins = n_bins

    def fit(self, X: np.ndarray, weight: np.ndarray) -> HBOSOutlier:
        HBOS = _pyod("hbos")
        # HBOS has no weights: its histograms come from the deduplicated rows.
        self.model_ = HBOS(n_bins=self.n_bins, contamination=0.001).fit(X.astype(np.float64))
        self.fill_ = float(_finite(self.model_.decision_scores_, 0.0).max(initial=0.0))
        return self

    def raw(self, X: np.ndarray) -> np.ndarray:
        return _finite(self.model_.decision_function(X.astype(np.float64)), self.fill_)


def make_outlier(kind: str, random_state: int = 0):
    if kind == "iforest":
        return IForestOutlier(random_state=random_state)
    if kind == "knn":
        return KNNOutlier(random_state=random_state)
    if kind == "abod":
        return ABODOutlier(random_state=random_state)
    if kind == "hbos":
        return HBOSOutlier()
    if kind == "none":
        return None
    raise ValueError(f"unknown outlier detector {kind!r}; choose one of {', '.join(OUTLIERS)}")
