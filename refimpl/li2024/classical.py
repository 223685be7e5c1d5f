"""The classical learners of spec L §6 E3, fitted on one prompt's context pairs (scikit-learn).

For a prompt P, each learner is fitted on the l context pairs (x_i = feature block of context
column i, label y_i = ±1) and predicts the query's label from x_query; the comparison with the
trained one-layer model (in-context learning) is ``refimpl.li2024.checks.classical``.
scikit-learn is the optional ``validate`` extra; it is imported when a learner is needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LEARNERS = ("logistic", "svm_gauss", "svm_linear", "1nn", "3nn")  # the names of classical_learners()


def classical_learners() -> dict:
    """The classical learners of E3 as scikit-learn estimators, keyed by name (spec L §6 E3).

    Hyper-parameters [C] (the paper does not give them): scikit-learn's defaults —
    ``LogisticRegression()`` (L2 penalty, C = 1, lbfgs, intercept), ``SVC(kernel="rbf")``
    ("SVM Gaussian": C = 1, γ = "scale" = 1 / (d_X · Var(X))), ``SVC(kernel="linear")`` (C = 1),
    ``KNeighborsClassifier(1)`` and ``KNeighborsClassifier(3)`` (Euclidean distance, uniform
    votes). scikit-learn is the optional ``validate`` extra; it is imported here, when needed.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    return {
        "logistic": LogisticRegression(),
        "svm_gauss": SVC(kernel="rbf"),
        "svm_linear": SVC(kernel="linear"),
        "1nn": KNeighborsClassifier(n_neighbors=1),
        "3nn": KNeighborsClassifier(n_neighbors=3),
    }


def classical_errors(X: np.ndarray, y: np.ndarray, x_query: np.ndarray, z: np.ndarray,
                     names: Sequence[str] = LEARNERS) -> dict[str, np.ndarray]:
    """Per-prompt errors (n,) bool of each classical learner, fitted on each prompt's context.

    ``X`` (n, l, d_X) context features, ``y`` (n, l) context labels ±1, ``x_query`` (n, d_X),
    ``z`` (n,) query labels ±1. A context with a single class predicts that class (the estimators
    refuse to fit one class); k-NN uses min(k, l) neighbours. BLAS/OpenMP run on one thread: on
    these tiny problems thread start-up costs more than the work (a k-NN fit + predict took ~30 ms
    with 2 threads on a busy 2-core machine, 0.5 ms with 1).
    """
    import sklearn
    from threadpoolctl import threadpool_limits

    n, l, _ = X.shape
    if y.shape != (n, l) or x_query.shape != X[:, 0].shape or z.shape != (n,):
        raise ValueError(f"shapes do not match: X {X.shape}, y {y.shape}, x_query {x_query.shape}, z {z.shape}")
    est = classical_learners()
    unknown = [k for k in names if k not in est]
    if unknown:
        raise ValueError(f"unknown classical learners {unknown}; allowed: {sorted(est)}")
    for name in ("1nn", "3nn"):
        est[name].set_params(n_neighbors=min(est[name].n_neighbors, l))
    pred = {name: np.zeros(n) for name in names}
    X = np.ascontiguousarray(X, dtype=np.float64)  # per-prompt slices X[i] then need no copy
    # inputs are finite by construction and the estimators' parameters fixed above: skip both checks
    with threadpool_limits(1), sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        for i in range(n):
            yi = y[i]
            if np.all(yi == yi[0]):  # single-class context: predict that class
                for name in names:
                    pred[name][i] = yi[0]
                continue
            xq = x_query[i : i + 1]  # (1, d_X)
            for name in names:
                pred[name][i] = est[name].fit(X[i], yi).predict(xq)[0]
    return {name: pred[name] != z for name in names}
