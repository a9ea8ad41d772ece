"""The classifier: the default scikit-learn pipeline, fitting any scikit-learn style classifier, its
predicted risks and its coefficient table.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .checks import check_binary

__all__ = ["default_model", "fit_model", "predict_risk", "model_table"]


def default_model(seed=0):
    """The default classifier: median imputation, standardisation, logistic regression.

    scikit-learn ``Pipeline(SimpleImputer(strategy='median'), StandardScaler(),
    LogisticRegression(max_iter=10000))`` with scikit-learn's default mild L2 penalty (C = 1), all fitted
    on the training cohort only (imputation medians and scaling included).
    """
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler()),
                     ("logreg", LogisticRegression(max_iter=10000, random_state=seed))])


def fit_model(data: pd.DataFrame, features: Sequence[str], outcome: str, estimator=None, seed=0):
    """Fit a clone of ``estimator`` (default :func:`default_model`) on ``data[features]`` -> outcome.

    Any scikit-learn style classifier with ``fit`` and ``predict_proba`` is accepted; the caller passes the
    training rows only.
    """
    from sklearn.base import clone

    est = default_model(seed) if estimator is None else clone(estimator)
    if not (hasattr(est, "fit") and hasattr(est, "predict_proba")):
        raise ValueError(f"estimator {type(est).__name__} must have fit() and predict_proba() "
                         "(a scikit-learn classifier)")
    y = check_binary(data[outcome].to_numpy(), f"outcome {outcome!r}")
    est.fit(data[list(features)], y)
    return est


def predict_risk(model, data: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
    """Predicted probability of outcome 1: the ``predict_proba`` column of class 1."""
    proba = np.asarray(model.predict_proba(data[list(features)]))
    classes = list(getattr(model, "classes_", [0, 1]))
    return proba[:, classes.index(1)].astype(float)


def model_table(model, features: Sequence[str]) -> pd.DataFrame:
    """Coefficients of a fitted logistic model (per SD of each feature for the default pipeline).

    Rows: intercept and one per feature with coefficient and odds ratio exp(coefficient); for the default
    pipeline also the training median used for imputation and the mean/SD used for scaling, so the model
    can be re-applied by hand (TRIPOD item 15a). Empty table for an estimator without ``coef_``.
    """
    est = model.steps[-1][1] if hasattr(model, "steps") else model
    if not hasattr(est, "coef_"):
        return pd.DataFrame(columns=["term", "coefficient", "odds_ratio"])
    rows = [{"term": "(intercept)", "coefficient": float(np.ravel(est.intercept_)[0])}]
    rows += [{"term": f, "coefficient": float(c)} for f, c in zip(features, np.ravel(est.coef_))]
    t = pd.DataFrame(rows)
    t["odds_ratio"] = np.exp(t["coefficient"])
    if hasattr(model, "named_steps"):
        imp, sc = model.named_steps.get("impute"), model.named_steps.get("scale")
        if imp is not None:
            t["impute_median"] = [np.nan] + list(imp.statistics_)
        if sc is not None:
            t["scale_mean"] = [np.nan] + list(sc.mean_)
            t["scale_sd"] = [np.nan] + list(sc.scale_)
    return t
