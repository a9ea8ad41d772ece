"""Feature screening and selection on the training cohort: univariate tests (scipy), Benjamini-Hochberg
(statsmodels), thresholds, correlation pruning and optional LASSO (scikit-learn).
"""
from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _sps

from .checks import check_binary
from .roc import delong_auc

__all__ = ["LassoResult", "Selection", "screen_features", "lasso_select", "select_features"]


# ------------------------------------------------------------------------------------------ screening

def _describe(x: np.ndarray) -> dict:
    if x.size == 0:
        return {"n": 0, "mean": np.nan, "sd": np.nan, "median": np.nan, "q1": np.nan, "q3": np.nan}
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    return {"n": int(x.size), "mean": float(np.mean(x)), "sd": float(np.std(x, ddof=1)) if x.size > 1 else np.nan,
            "median": float(med), "q1": float(q1), "q3": float(q3)}


def screen_features(data: pd.DataFrame, features: Sequence[str], outcome: str,
                    conf_level: float = 0.95) -> pd.DataFrame:
    """Univariate screening of every feature against a binary outcome (one cohort, usually training).

    Per feature, on its non-missing values: per-class n, mean, SD (n-1), median, Q1, Q3 (numpy type-7
    percentiles); Mann-Whitney U two-sided p (scipy ``mannwhitneyu``, exact for small samples without
    ties, otherwise normal approximation with tie and continuity correction); Welch's unequal-variance t
    test p (scipy ``ttest_ind(equal_var=False)``); Benjamini-Hochberg q of both p columns over the
    screened features (statsmodels ``multipletests(method='fdr_bh')``); AUC with DeLong CI
    (:func:`delong_auc`) in the direction that gives AUC >= 0.5: ``direction`` '<' = higher values in
    outcome 1, '>' = lower values in outcome 1.

    A feature that cannot be screened is kept as a row with a non-empty ``reason`` (non-numeric, all
    missing, constant, no values in one class) and NaN statistics; it is never dropped silently.
    """
    from statsmodels.stats.multitest import multipletests

    if outcome not in data.columns:
        raise ValueError(f"outcome column {outcome!r} not found; columns are {list(data.columns)[:20]}")
    y = check_binary(data[outcome].to_numpy(), f"outcome {outcome!r}")
    rows = []
    for feat in features:
        if feat not in data.columns:
            raise ValueError(f"feature column {feat!r} not found in the table")
        col = data[feat]
        row: dict[str, Any] = {"feature": feat, "reason": ""}
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            row["reason"] = f"non-numeric (dtype {col.dtype})"
            row["n_missing"] = int(col.isna().sum())
            rows.append(row)
            continue
        x = col.to_numpy(dtype=float)
        miss = ~np.isfinite(x)
        row["n_missing"] = int(miss.sum())
        x0, x1 = x[(y == 0) & ~miss], x[(y == 1) & ~miss]
        for cls, xc in ((0, x0), (1, x1)):
            for k, v in _describe(xc).items():
                row[f"{k}_{cls}"] = v
        if miss.all():
            row["reason"] = "all values missing"
        elif np.nanmax(x) == np.nanmin(x):
            row["reason"] = f"constant (every value {np.nanmin(x):g})"
        elif x0.size == 0 or x1.size == 0:
            row["reason"] = f"no non-missing values in outcome class {0 if x0.size == 0 else 1}"
        if row["reason"]:
            rows.append(row)
            continue
        row["mwu_p"] = float(_sps.mannwhitneyu(x1, x0, alternative="two-sided").pvalue)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            row["welch_p"] = float(_sps.ttest_ind(x1, x0, equal_var=False).pvalue)
        ok = ~miss
        r = delong_auc(y[ok], x[ok], "auto", conf_level)
        row.update({"auc": r.auc, "auc_ci_low": r.ci_low, "auc_ci_high": r.ci_high, "direction": r.direction,
                    "higher_in": "outcome 1" if r.direction == "<" else "outcome 0"})
        rows.append(row)
    cols = (["feature", "reason", "n_missing"]
            + [f"{k}_{c}" for c in (0, 1) for k in ("n", "mean", "sd", "median", "q1", "q3")]
            + ["mwu_p", "mwu_q", "welch_p", "welch_q", "auc", "auc_ci_low", "auc_ci_high", "direction",
               "higher_in"])
    out = pd.DataFrame(rows).reindex(columns=cols)
    for pcol in ("mwu_p", "welch_p"):
        ok = out[pcol].notna()
        if ok.any():
            out.loc[ok, pcol[:-1] + "q"] = multipletests(out.loc[ok, pcol].to_numpy(float), method="fdr_bh")[1]
    out["reason"] = out["reason"].fillna("")
    return out


# ------------------------------------------------------------------------------------------ selection

def _l1_kwargs(cls, cv: bool) -> dict:
    """Ask scikit-learn for an L1 penalty in the spelling of the installed version."""
    default = inspect.signature(cls).parameters["penalty"].default
    if default == "deprecated":  # scikit-learn >= 1.8: penalty via l1_ratio(s)
        return {"l1_ratios": [1.0]} if cv else {"l1_ratio": 1.0}
    return {"penalty": "l1"}


@dataclass
class LassoResult:
    """Cross-validated L1 logistic regression: chosen C, coefficients and the regularisation path."""

    C: float
    coefficients: pd.Series
    path: pd.DataFrame
    cv: str
    n_splits: int

    def as_dict(self) -> dict:
        """The chosen C, the CV scheme and the non-zero coefficients."""
        return {"C": self.C, "cv": self.cv, "n_splits": self.n_splits,
                "nonzero": {k: float(v) for k, v in self.coefficients.items() if v != 0}}


def lasso_select(data: pd.DataFrame, features: Sequence[str], outcome: str, groups=None, n_splits: int = 5,
                 Cs: int = 20, seed=0) -> LassoResult:
    """LASSO (L1-penalised) logistic regression with the penalty chosen by cross-validated AUC.

    Features are median-imputed and standardised (mean 0, SD 1 on these rows), then scikit-learn
    ``LogisticRegressionCV`` (L1, liblinear, ``Cs`` values log-spaced over 1e-4..1e4, scoring ROC AUC)
    picks C. Folds: ``GroupKFold`` by patient when ``groups`` is given (nodes of a patient never split
    between fit and test), else ``StratifiedKFold(shuffle=True, random_state=seed)``. The path holds, for
    every C, the coefficients refitted on all rows and the mean/SD of the cross-validated AUC.
    """
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import GroupKFold, StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    features = list(features)
    if not features:
        raise ValueError("lasso_select needs at least one feature; got none")
    y = check_binary(data[outcome].to_numpy(), f"outcome {outcome!r}")
    X = data[features].to_numpy(dtype=float)
    X = StandardScaler().fit_transform(SimpleImputer(strategy="median").fit_transform(X))
    if groups is not None:
        g = np.asarray(groups)
        k = min(n_splits, len(pd.unique(g)))
        splits = list(GroupKFold(n_splits=k).split(X, y, g))
        scheme = f"GroupKFold({k}) by patient"
    else:
        k = min(n_splits, int(min(y.sum(), y.size - y.sum())))
        splits = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(X, y))
        scheme = f"StratifiedKFold({k}, shuffle, seed={seed})"
    if k < 2:
        raise ValueError(f"LASSO cross-validation needs >= 2 folds; the training data allow {k}")
    kw = dict(Cs=Cs, cv=splits, solver="liblinear", scoring="roc_auc", max_iter=10000, random_state=seed)
    kw.update(_l1_kwargs(LogisticRegressionCV, cv=True))
    if "use_legacy_attributes" in inspect.signature(LogisticRegressionCV).parameters:
        kw["use_legacy_attributes"] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cvm = LogisticRegressionCV(**kw).fit(X, y)
    C = float(np.ravel(cvm.C_)[0])
    Cvals = np.asarray(cvm.Cs_, dtype=float)
    sc = cvm.scores_
    sc = np.asarray(next(iter(sc.values())) if isinstance(sc, dict) else sc, dtype=float)
    sc = np.squeeze(sc)
    if sc.ndim == 1:
        sc = sc[None, :]
    if sc.shape[-1] != Cvals.size:
        sc = sc.reshape(-1, Cvals.size)
    rows = []
    lkw = _l1_kwargs(LogisticRegression, cv=False)
    for i, c in enumerate(Cvals):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = LogisticRegression(C=c, solver="liblinear", max_iter=10000, random_state=seed, **lkw).fit(X, y)
        row = {"C": c, "log10_C": math.log10(c), "cv_auc_mean": float(np.mean(sc[:, i])),
               "cv_auc_sd": float(np.std(sc[:, i], ddof=1)) if sc.shape[0] > 1 else float("nan"),
               "n_nonzero": int(np.sum(f.coef_[0] != 0)), "chosen": bool(np.isclose(c, C))}
        row.update({feat: float(v) for feat, v in zip(features, f.coef_[0])})
        rows.append(row)
    coefs = pd.Series(cvm.coef_[0], index=features, dtype=float)
    return LassoResult(C, coefs, pd.DataFrame(rows), scheme, k)


@dataclass
class Selection:
    """Which features were kept, and the reason at each step for every feature."""

    selected: list
    table: pd.DataFrame
    settings: dict
    notes: list
    lasso: LassoResult | None = None

    def as_dict(self) -> dict:
        """Selected features, settings and notes."""
        return {"selected": list(self.selected), "settings": dict(self.settings), "notes": list(self.notes),
                "lasso": self.lasso.as_dict() if self.lasso else None}


def select_features(screening: pd.DataFrame, data: pd.DataFrame, outcome: str, *, p_max: float | None = 0.05,
                    p_column: str = "mwu_p", q_max: float | None = None, q_column: str = "mwu_q",
                    auc_min: float | None = 0.6, corr_max: float | None = 0.8, corr_method: str = "spearman",
                    lasso: bool = False, groups=None, lasso_splits: int = 5, lasso_Cs: int = 20,
                    max_features: int | None = None, seed=0) -> Selection:
    """Feature selection on the training cohort: thresholds, correlation pruning, optional LASSO.

    Steps, in order, each recorded per feature in ``table``:
    1. screenable (empty ``reason`` in :func:`screen_features`);
    2. ``p_column`` <= ``p_max`` (default Mann-Whitney p <= 0.05), ``q_column`` <= ``q_max`` (BH q), and
       AUC >= ``auc_min`` (oriented AUC, >= 0.5 by construction); a None threshold is not applied;
    3. correlation pruning: candidates in decreasing AUC order, a feature is dropped when
       |r| > ``corr_max`` (``corr_method`` 'spearman' or 'pearson', pairwise complete) with one already
       kept (``pruned_by`` names it);
    4. ``max_features``: keep the first k by AUC;
    5. optional LASSO logistic regression (:func:`lasso_select`, grouped by patient when ``groups``):
       keep features with non-zero coefficient.
    If no feature survives a step, the best-AUC feature from before that step is kept and a note says so.
    """
    settings = dict(p_max=p_max, p_column=p_column, q_max=q_max, q_column=q_column, auc_min=auc_min,
                    corr_max=corr_max, corr_method=corr_method, lasso=lasso, lasso_splits=lasso_splits,
                    lasso_Cs=lasso_Cs, max_features=max_features, seed=seed)
    for col in (p_column, q_column):
        if col not in screening.columns:
            raise ValueError(f"screening table has no column {col!r}; expected one of mwu_p, welch_p, mwu_q, welch_q")
    if corr_method not in ("spearman", "pearson"):
        raise ValueError(f"corr_method must be 'spearman' or 'pearson'; got {corr_method!r}")
    t = screening[["feature", "reason", p_column, q_column, "auc"]].copy()
    t["screenable"] = t["reason"] == ""
    t["passed_p"] = t["screenable"] & (True if p_max is None else t[p_column] <= p_max)
    t["passed_q"] = t["screenable"] & (True if q_max is None else t[q_column] <= q_max)
    t["passed_auc"] = t["screenable"] & (True if auc_min is None else t["auc"] >= auc_min)
    t["pruned_by"] = ""
    t["lasso_coef"] = np.nan
    notes: list[str] = []
    screenable = t[t.screenable].sort_values("auc", ascending=False, kind="mergesort")
    if screenable.empty:
        raise ValueError("no feature could be screened (see the 'reason' column of the screening table): "
                         "expected at least one numeric, non-constant feature with values in both classes")
    passed = screenable[screenable.passed_p & screenable.passed_q & screenable.passed_auc]
    cand = list(passed.feature)
    if not cand:
        cand = [screenable.feature.iloc[0]]
        notes.append(f"no feature passed the p/q/AUC thresholds; kept the best-AUC feature {cand[0]!r}")
    kept: list[str] = []
    if corr_max is not None and len(cand) > 1:
        corr = data[cand].apply(pd.to_numeric, errors="coerce").corr(method=corr_method).abs()
        for f in cand:
            hit = [k for k in kept if corr.loc[f, k] > corr_max]
            if hit:
                t.loc[t.feature == f, "pruned_by"] = hit[0]
            else:
                kept.append(f)
    else:
        kept = cand
    if max_features is not None and len(kept) > max_features:
        for f in kept[max_features:]:
            t.loc[t.feature == f, "pruned_by"] = f"max_features={max_features}"
        kept = kept[:max_features]
    lasso_res = None
    if lasso:
        lasso_res = lasso_select(data, kept, outcome, groups=groups, n_splits=lasso_splits, Cs=lasso_Cs, seed=seed)
        for f, c in lasso_res.coefficients.items():
            t.loc[t.feature == f, "lasso_coef"] = c
        nz = [f for f in kept if lasso_res.coefficients[f] != 0]
        if not nz:
            nz = [kept[0]]
            notes.append(f"LASSO kept no feature at the chosen C; kept the best-AUC feature {nz[0]!r}")
        kept = nz
    t["selected"] = t.feature.isin(kept)
    return Selection(kept, t, settings, notes, lasso_res)
