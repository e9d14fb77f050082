"""Class probabilities of a fitted scikit-learn forest, the same bytes on every run.

`RandomForestClassifier.predict_proba` with n_jobs > 1 adds each tree's probabilities into one
array as the threads finish, so the order of the float additions, and with it the last bits of
a score, changes from run to run (67 of 880 k scores differed between two runs of the same
`flowtriage score`). Here the threads split the rows instead of the trees: every row's sum is
taken in tree order, exactly as scikit-learn's single-threaded path takes it, whatever the
number of threads; the trees' own prediction (Cython, without the GIL) runs in parallel.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

# Below this many rows per thread, one thread is as quick (and leaves the other core to the
# reader of the next dump).
_PARALLEL_ROWS = 65536


def forest_proba(model: Any, X: np.ndarray, n_jobs: int = 2) -> np.ndarray:
    """model.predict_proba(X) for a fitted sklearn forest classifier, summed in tree order."""
    X = np.ascontiguousarray(X, dtype=np.float32)  # what the forest's own input check makes
    trees = model.estimators_
    n_classes = int(model.n_classes_)

    def block(rows: slice) -> np.ndarray:
        out = np.zeros((len(X[rows]), n_classes), dtype=np.float64)
        for tree in trees:
            out += tree.predict_proba(X[rows], check_input=False)
        out /= len(trees)
        return out

    jobs = max(1, min(n_jobs, len(X) // _PARALLEL_ROWS))
    if jobs == 1:
        return block(slice(None))
    bounds = np.linspace(0, len(X), jobs + 1).astype(int)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        parts = list(pool.map(block, [slice(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]))
    return np.concatenate(parts)
