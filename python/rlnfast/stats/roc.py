"""Discrimination: the AUC with DeLong's variance and tests, the ROC curve, the Youden cut-off and the
measures at a frozen threshold.

- DeLong's AUC variance and tests with the fast midrank algorithm of Sun & Xu (2014), matching R's pROC
  1.18 (``ci.auc(method='delong')``, ``var()``, ``roc.test(method='delong')``, paired and unpaired);
- Youden's cut-off on pROC's threshold grid (midpoints between adjacent distinct scores) with a stated
  tie rule, frozen on the training cohort and applied unchanged to validation;
- sensitivity, specificity, PPV, NPV and accuracy at that threshold with Wilson intervals (statsmodels).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _sps

from .checks import _both_classes, _orient, _scores, _z, check_binary

__all__ = ["AUCResult", "PairedDeLongResult", "UnpairedDeLongResult", "YoudenResult", "delong_auc",
           "delong_paired_test", "delong_unpaired_test", "roc_points", "youden_threshold", "wilson_ci",
           "threshold_metrics"]


# --------------------------------------------------------------------------------------------- DeLong

def _placements(y: np.ndarray, scores: np.ndarray):
    """Sun & Xu (2014) fast DeLong: AUCs and structural components from midranks, O(n log n) per score.

    ``scores`` has shape (k, n). With X = scores of the m positives, Y = the n negatives, T_X, T_Y, T_Z the
    midranks within X, within Y and within X+Y:
        AUC   = (sum_i T_Z(X_i) - m(m+1)/2) / (m n)
        V10_i = (T_Z(X_i) - T_X(X_i)) / n      (fraction of negatives below X_i, ties 1/2)
        V01_j = 1 - (T_Z(Y_j) - T_Y(Y_j)) / m  (fraction of positives above Y_j, ties 1/2)
    """
    pos = scores[:, y == 1]
    neg = scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    tx = _sps.rankdata(pos, axis=1)
    ty = _sps.rankdata(neg, axis=1)
    tz = _sps.rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    aucs = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return aucs, v10, v01


def _delong_cov(v10: np.ndarray, v01: np.ndarray) -> np.ndarray:
    m, n = v10.shape[1], v01.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        s10 = np.atleast_2d(np.cov(v10)) if m > 1 else np.full((v10.shape[0],) * 2, np.nan)
        s01 = np.atleast_2d(np.cov(v01)) if n > 1 else np.full((v01.shape[0],) * 2, np.nan)
    return s10 / m + s01 / n


@dataclass
class AUCResult:
    """AUC with DeLong variance and normal-approximation CI (pROC ``ci.auc(method='delong')``)."""

    auc: float
    variance: float
    se: float
    ci_low: float
    ci_high: float
    conf_level: float
    n_pos: int
    n_neg: int
    direction: str

    def as_dict(self) -> dict:
        """The fields as a plain dict."""
        return dataclasses.asdict(self)


def delong_auc(y, score, direction: str = "<", conf_level: float = 0.95) -> AUCResult:
    """Area under the ROC curve with DeLong's variance and confidence interval.

    AUC = P(S+ > S-) + P(S+ = S-)/2 (Mann-Whitney form). Variance (DeLong, DeLong & Clarke-Pearson 1988):
    Var = s10^2 / m + s01^2 / n, where s10^2 and s01^2 are the sample variances (n-1 denominator) of the
    structural components V10 (positives) and V01 (negatives), computed by the midrank algorithm of
    Sun & Xu (2014). CI = AUC -/+ z_{(1+conf)/2} sqrt(Var), clipped to [0, 1]. This is R pROC 1.18
    ``roc(y, score, direction, levels=c(0,1))``, ``var()`` and ``ci.auc(method='delong')``.

    ``direction``: ``'<'`` (pROC's: controls have lower scores, positives higher), ``'>'`` (the opposite)
    or ``'auto'`` (whichever gives AUC >= 0.5; note pROC's 'auto' compares medians instead).
    """
    yy = check_binary(y)
    s = _scores(score, n=yy.size)
    _both_classes(yy, "outcome")
    if direction == "auto":
        auc_lt = _placements(yy, s[None, :])[0][0]
        direction = "<" if auc_lt >= 0.5 else ">"
    aucs, v10, v01 = _placements(yy, _orient(s, direction)[None, :])
    var = float(_delong_cov(v10, v01)[0, 0])
    auc = float(aucs[0])
    se = math.sqrt(var) if var >= 0 else float("nan")
    z = _z(conf_level)
    lo, hi = max(0.0, auc - z * se), min(1.0, auc + z * se)
    return AUCResult(auc, var, se, lo, hi, conf_level, int(yy.sum()), int(yy.size - yy.sum()), direction)


@dataclass
class PairedDeLongResult:
    """Paired DeLong test of two AUCs on the same cases (pROC ``roc.test(paired=TRUE, method='delong')``)."""

    auc_a: float
    auc_b: float
    difference: float
    se: float
    z: float
    p: float
    ci_low: float
    ci_high: float
    conf_level: float

    def as_dict(self) -> dict:
        """The fields as a plain dict."""
        return dataclasses.asdict(self)


def delong_paired_test(y, score_a, score_b, direction: str = "<", conf_level: float = 0.95) -> PairedDeLongResult:
    """DeLong's test for two correlated AUCs (two models or features on the same nodes).

    With S = S10/m + S01/n the 2x2 DeLong covariance of (AUC_a, AUC_b) (S10, S01: sample covariances of
    the structural components, Sun & Xu 2014), Var(d) = S_aa + S_bb - 2 S_ab for d = AUC_a - AUC_b,
    z = d / sqrt(Var(d)), two-sided p = 2 Phi(-|z|), CI = d -/+ z_{(1+conf)/2} sqrt(Var(d)).
    Matches R pROC 1.18 ``roc.test(ra, rb, method='delong', paired=TRUE)`` (statistic, p.value, conf.int).
    Identical curves give z = 0, p = 1 (as pROC). ``direction`` applies to both scores ('<' or '>').
    """
    yy = check_binary(y)
    a = _scores(score_a, "score_a", yy.size)
    b = _scores(score_b, "score_b", yy.size)
    _both_classes(yy, "outcome")
    aucs, v10, v01 = _placements(yy, np.vstack([_orient(a, direction), _orient(b, direction)]))
    S = _delong_cov(v10, v01)
    d = float(aucs[0] - aucs[1])
    var = float(S[0, 0] + S[1, 1] - 2.0 * S[0, 1])
    se = math.sqrt(max(var, 0.0))
    if se == 0.0:
        z, p = 0.0, 1.0
    else:
        z = d / se
        p = float(2.0 * _sps.norm.sf(abs(z)))
    q = _z(conf_level)
    return PairedDeLongResult(float(aucs[0]), float(aucs[1]), d, se, z, p, d - q * se, d + q * se, conf_level)


@dataclass
class UnpairedDeLongResult:
    """Unpaired DeLong test of two AUCs on independent samples (pROC ``roc.test(paired=FALSE)``)."""

    auc_1: float
    auc_2: float
    difference: float
    se: float
    D: float
    df: float
    p: float
    ci_low: float
    ci_high: float
    conf_level: float

    def as_dict(self) -> dict:
        """The fields as a plain dict."""
        return dataclasses.asdict(self)


def delong_unpaired_test(y1, score1, y2, score2, direction: str = "<",
                         conf_level: float = 0.95) -> UnpairedDeLongResult:
    """DeLong test for two AUCs from independent samples (e.g. training vs validation cohort).

    D = (AUC_1 - AUC_2) / sqrt(V_1 + V_2) with V_k the DeLong variance of AUC_k (:func:`delong_auc`);
    Welch-Satterthwaite degrees of freedom on the sample sizes N_k = cases + controls:
        df = (V_1 + V_2)^2 / (V_1^2 / (N_1 - 1) + V_2^2 / (N_2 - 1)),
    p = 2 P(T_df > |D|). This is R pROC 1.18 ``roc.test(r1, r2, method='delong', paired=FALSE)``
    (statistic D, parameter df, p.value). pROC gives no interval here; ``ci_low``/``ci_high`` are the
    matching t interval d -/+ t_{df,(1+conf)/2} sqrt(V_1 + V_2) (an rlnfast addition).
    """
    r1 = delong_auc(y1, score1, direction, conf_level)
    r2 = delong_auc(y2, score2, direction, conf_level)
    N1, N2 = r1.n_pos + r1.n_neg, r2.n_pos + r2.n_neg
    v = r1.variance + r2.variance
    se = math.sqrt(v)
    d = r1.auc - r2.auc
    D = d / se if se > 0 else 0.0
    df = v * v / (r1.variance ** 2 / (N1 - 1) + r2.variance ** 2 / (N2 - 1)) if se > 0 else float("nan")
    p = float(2.0 * _sps.t.sf(abs(D), df)) if se > 0 else 1.0
    tq = float(_sps.t.ppf(0.5 + conf_level / 2.0, df)) if se > 0 else 0.0
    return UnpairedDeLongResult(r1.auc, r2.auc, d, se, D, df, p, d - tq * se, d + tq * se, conf_level)


# ----------------------------------------------------------------------------------- ROC and Youden

def roc_points(y, score, direction: str = "<") -> pd.DataFrame:
    """Empirical ROC curve on pROC's threshold grid.

    Thresholds are -inf, the midpoints (u_k + u_{k+1})/2 between adjacent distinct scores, and +inf
    (pROC ``roc()``); a node is called positive when its (oriented) score is >= the threshold.
    Returns columns threshold, sensitivity, specificity, fpr (= 1 - specificity), tp, fp, tn, fn, ordered
    by increasing threshold.
    """
    yy = check_binary(y)
    s = _orient(_scores(score, n=yy.size), direction)
    _both_classes(yy, "outcome")
    u = np.unique(s)
    thr = np.concatenate([[-np.inf], (u[:-1] + u[1:]) / 2.0, [np.inf]])
    pos = np.sort(s[yy == 1])
    neg = np.sort(s[yy == 0])
    m, n = pos.size, neg.size
    tp = m - np.searchsorted(pos, thr, side="left")
    fp = n - np.searchsorted(neg, thr, side="left")
    if direction == ">":
        thr = -thr  # report thresholds on the original scale (called positive when score <= threshold)
    return pd.DataFrame({"threshold": thr, "sensitivity": tp / m, "specificity": (n - fp) / n,
                         "fpr": fp / n, "tp": tp, "fp": fp, "tn": n - fp, "fn": m - tp})


@dataclass
class YoudenResult:
    """The Youden-optimal cut-off chosen on one cohort (usually training), with every tied optimum."""

    threshold: float
    sensitivity: float
    specificity: float
    youden_j: float
    n_best: int
    tie_rule: str
    tied: pd.DataFrame
    direction: str = "<"

    def as_dict(self) -> dict:
        """The scalar fields as a plain dict (``tied`` as a list of records)."""
        d = {k: getattr(self, k) for k in ("threshold", "sensitivity", "specificity", "youden_j", "n_best",
                                           "tie_rule", "direction")}
        d["tied"] = self.tied.to_dict("records")
        return d


def youden_threshold(y, score, tie: str = "sensitivity", direction: str = "<") -> YoudenResult:
    """Cut-off maximising Youden's J = sensitivity + specificity - 1 (Youden 1950).

    Candidates are pROC's thresholds (see :func:`roc_points`): -inf, midpoints between adjacent distinct
    scores, +inf, so the reported threshold is the midpoint between two observed scores, as
    ``coords(roc, 'best', best.method='youden')`` in pROC 1.18. J is compared exactly in integers
    (m n J = n TP + m TN - m n), so ties are true ties. pROC returns every tied optimum; they are all kept
    in ``tied`` (``n_best`` of them) and one is chosen by the tie rule:
    ``tie='sensitivity'`` (default) takes the tied optimum with the highest sensitivity (lowest threshold):
    in nodal staging a missed metastasis costs more than a false alarm; ``tie='specificity'`` takes the
    highest specificity. The chosen threshold is then frozen and applied unchanged to other cohorts
    (:func:`threshold_metrics`).
    """
    if tie not in ("sensitivity", "specificity"):
        raise ValueError(f"tie must be 'sensitivity' or 'specificity'; got {tie!r}")
    r = roc_points(y, score, direction)
    m = int(r.tp.iloc[0] + r.fn.iloc[0])
    n = int(r.tn.iloc[0] + r.fp.iloc[0])
    jnum = r.tp.to_numpy(np.int64) * n + r.tn.to_numpy(np.int64) * m - m * n
    best = np.flatnonzero(jnum == jnum.max())
    tied = r.iloc[best][["threshold", "sensitivity", "specificity"]].reset_index(drop=True)
    tied["youden_j"] = tied.sensitivity + tied.specificity - 1.0
    order = tied.sort_values(["sensitivity" if tie == "sensitivity" else "specificity"], ascending=False,
                             kind="mergesort")
    pick = order.iloc[0]
    return YoudenResult(float(pick.threshold), float(pick.sensitivity), float(pick.specificity),
                        float(pick.youden_j), int(best.size), tie, tied, direction)


def wilson_ci(count, nobs, conf_level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion (statsmodels ``proportion_confint(method='wilson')``).

    Returns (nan, nan) when ``nobs`` is 0.
    """
    from statsmodels.stats.proportion import proportion_confint

    if nobs <= 0:
        return float("nan"), float("nan")
    lo, hi = proportion_confint(int(count), int(nobs), alpha=1.0 - conf_level, method="wilson")
    return float(lo), float(hi)


def threshold_metrics(y, score, threshold: float, conf_level: float = 0.95,
                      direction: str = "<") -> pd.DataFrame:
    """Sensitivity, specificity, PPV, NPV and accuracy at a fixed (frozen) threshold, with Wilson CIs.

    A node is called positive when score >= threshold (direction '<'; pROC's convention) or
    score <= threshold (direction '>'). sensitivity = TP/(TP+FN), specificity = TN/(TN+FP),
    PPV = TP/(TP+FP), NPV = TN/(TN+FN), accuracy = (TP+TN)/N; each with the Wilson score interval
    (Wilson 1927; statsmodels ``proportion_confint(method='wilson')``). Returns one row per measure with
    estimate, ci_low, ci_high, count, total, method.
    """
    yy = check_binary(y)
    s = _scores(score, n=yy.size)
    call = s >= threshold if direction == "<" else s <= threshold
    tp = int(np.sum(call & (yy == 1)))
    fp = int(np.sum(call & (yy == 0)))
    fn = int(np.sum(~call & (yy == 1)))
    tn = int(np.sum(~call & (yy == 0)))
    rows = []
    for name, k, tot in (("sensitivity", tp, tp + fn), ("specificity", tn, tn + fp), ("PPV", tp, tp + fp),
                         ("NPV", tn, tn + fn), ("accuracy", tp + tn, yy.size)):
        lo, hi = wilson_ci(k, tot, conf_level)
        rows.append({"measure": name, "estimate": k / tot if tot else float("nan"), "ci_low": lo,
                     "ci_high": hi, "count": k, "total": tot, "method": "Wilson"})
    return pd.DataFrame(rows)
