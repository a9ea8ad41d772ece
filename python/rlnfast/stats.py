"""Statistics of a node-level radiomics study: screening, selection, a classifier, validation, calibration, DCA.

The input is a feature table with one row per lymph node, an outcome column (1 = metastatic, 0 = benign),
a cohort column (training / validation) and, optionally, a patient column (several nodes per patient).
Each step uses the well-kept library that does it (scipy for the tests, statsmodels for Benjamini-Hochberg,
Wilson intervals and the logistic recalibration, scikit-learn for LASSO and the classifier, ``dcurves``
for net benefit); this module writes only what none of them provides:

- DeLong's AUC variance and tests with the fast midrank algorithm of Sun & Xu (2014), matching R's pROC
  1.18 (``ci.auc(method='delong')``, ``var()``, ``roc.test(method='delong')``, paired and unpaired);
- Youden's cut-off on pROC's threshold grid (midpoints between adjacent distinct scores) with a stated
  tie rule, frozen on the training cohort and applied unchanged to validation;
- the calibration summary of rms ``val.prob`` (Dxy, C, R2, D, U, Q, Brier, Intercept, Slope, Emax, E90,
  Eavg, Spiegelhalter's z) plus calibration-in-the-large, scaled Brier and Hosmer-Lemeshow;
- stratified (optionally patient-clustered) bootstraps of the AUC and of the ROC curve, vectorised over
  replicates (no Python loop over resamples).

:func:`analyze` runs the whole study on a table and returns an :class:`AnalysisResult`;
:func:`rlnfast.report.write_report` turns it into CSV tables, PNG figures and a self-contained HTML page.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import platform
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _sps

__all__ = [
    "AUCResult", "PairedDeLongResult", "UnpairedDeLongResult", "YoudenResult", "BootstrapResult",
    "CalibrationResult", "LassoResult", "Selection", "AnalysisResult",
    "check_binary", "delong_auc", "delong_paired_test", "delong_unpaired_test", "roc_points",
    "youden_threshold", "threshold_metrics", "wilson_ci", "bootstrap_weights", "bootstrap_auc",
    "roc_confidence_band", "screen_features", "select_features", "lasso_select", "default_model",
    "fit_model", "predict_risk", "model_table", "val_prob", "hosmer_lemeshow", "spiegelhalter",
    "calibration_in_the_large", "calibration_bins", "calibration_smooth", "calibration_summary",
    "decision_curve", "cohort_metrics", "software_versions", "validate_table", "analyze",
]

#: decision-curve threshold grid: 0.01, 0.02, ..., 0.99 (the same floats as ``i / 100``)
DEFAULT_DCA_THRESHOLDS = tuple(i / 100 for i in range(1, 100))
#: the threshold range the report tabulates and plots (the study reported net benefit over 10-70 %)
DEFAULT_DCA_REPORT_RANGE = (0.10, 0.70)


# --------------------------------------------------------------------------------------------- checks

def check_binary(y, name: str = "outcome") -> np.ndarray:
    """Return ``y`` as an int8 array of 0/1, or raise ``ValueError`` naming ``name``.

    Accepted: numbers equal to 0 or 1 (int, float, bool). Missing values and any other value are errors,
    never silently dropped: ``outcome 'N' must be 0/1; found values [0, 1, 2]``.
    """
    arr = np.asarray(y)
    if arr.dtype == bool:
        return arr.astype(np.int8)
    try:
        num = pd.to_numeric(pd.Series(arr.ravel()), errors="raise").to_numpy(dtype=float)
    except (ValueError, TypeError):
        vals = sorted(map(str, pd.unique(pd.Series(arr.ravel()))))[:10]
        raise ValueError(f"{name} must be 0/1 (numbers); found non-numeric values {vals}") from None
    if np.isnan(num).any():
        raise ValueError(f"{name} must be 0/1; {int(np.isnan(num).sum())} value(s) are missing (NaN)")
    bad = ~np.isin(num, (0.0, 1.0))
    if bad.any():
        vals = sorted(set(num.tolist()))[:10]
        raise ValueError(f"{name} must be 0/1; found values {vals}")
    return num.reshape(arr.shape).astype(np.int8)


def _scores(score, name: str = "score", n: int | None = None) -> np.ndarray:
    s = np.asarray(score, dtype=float)
    if s.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {s.shape}")
    if n is not None and s.shape[0] != n:
        raise ValueError(f"{name} has {s.shape[0]} values; expected {n} (one per outcome)")
    if not np.isfinite(s).all():
        raise ValueError(f"{name} must be finite; {int((~np.isfinite(s)).sum())} value(s) are NaN or infinite")
    return s


def _both_classes(y: np.ndarray, name: str) -> None:
    n1 = int(y.sum())
    if n1 == 0 or n1 == y.size:
        only = 1 if n1 else 0
        raise ValueError(f"{name} has only outcome {only} (n={y.size}); both classes 0 and 1 are needed")


def _orient(score: np.ndarray, direction: str) -> np.ndarray:
    if direction == "<":
        return score
    if direction == ">":
        return -score
    raise ValueError(f"direction must be '<', '>' or 'auto'; got {direction!r}")


def _z(conf_level: float) -> float:
    if not 0.0 < conf_level < 1.0:
        raise ValueError(f"conf_level must lie in (0, 1); got {conf_level}")
    return float(_sps.norm.ppf(0.5 + conf_level / 2.0))


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


# -------------------------------------------------------------------------------------- bootstrap

def bootstrap_weights(y, n_boot: int, groups=None, seed=0) -> np.ndarray:
    """Replicate weights (n_boot, N) of a stratified, optionally patient-clustered bootstrap.

    Without ``groups``: positives and negatives are resampled separately with replacement (m of m and n of
    n, pROC's stratified bootstrap); weight = how often a node was drawn (one multinomial draw per
    stratum for all replicates at once). With ``groups`` (patient ids): patients are resampled with
    replacement within two strata (patients with at least one positive node / with none), and each node
    gets its patient's draw count, keeping the nodes of one patient together.
    """
    yy = check_binary(y)
    rng = np.random.default_rng(seed)
    N = yy.size
    W = np.zeros((n_boot, N), dtype=np.int32)
    if groups is None:
        for cls in (0, 1):
            idx = np.flatnonzero(yy == cls)
            if idx.size:
                W[:, idx] = rng.multinomial(idx.size, np.full(idx.size, 1.0 / idx.size), size=n_boot)
        return W
    g = pd.Series(np.asarray(groups)).reset_index(drop=True)
    if g.isna().any():
        raise ValueError(f"patient column has {int(g.isna().sum())} missing value(s); expected an id per node")
    codes, uniq = pd.factorize(g)
    has_pos = np.zeros(uniq.size, dtype=bool)
    np.logical_or.at(has_pos, codes, yy == 1)
    for stratum in (False, True):
        pats = np.flatnonzero(has_pos == stratum)
        if pats.size == 0:
            continue
        counts = np.zeros((n_boot, uniq.size), dtype=np.int32)
        counts[:, pats] = rng.multinomial(pats.size, np.full(pats.size, 1.0 / pats.size), size=n_boot)
        members = np.isin(codes, pats)
        W[:, members] = counts[:, codes[members]]
    return W


def _weighted_class_counts(y: np.ndarray, s: np.ndarray, W: np.ndarray):
    """Per replicate and per distinct score (ascending): weighted positive and negative counts."""
    from scipy import sparse

    u, inv = np.unique(s, return_inverse=True)
    N, K = s.size, u.size
    onehot_pos = sparse.csr_matrix(((y == 1).astype(float), (np.arange(N), inv)), shape=(N, K))
    onehot_neg = sparse.csr_matrix(((y == 0).astype(float), (np.arange(N), inv)), shape=(N, K))
    Wf = W.astype(float)
    P = np.asarray((onehot_pos.T @ Wf.T).T)
    Q = np.asarray((onehot_neg.T @ Wf.T).T)
    return u, P, Q


def _weighted_auc(P: np.ndarray, Q: np.ndarray) -> np.ndarray:
    below = np.cumsum(Q, axis=1) - Q
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(P * (below + 0.5 * Q), axis=1) / (P.sum(axis=1) * Q.sum(axis=1))


def _chunks(n_boot: int, N: int, budget: int = 4_000_000):
    step = max(1, budget // max(N, 1))
    for start in range(0, n_boot, step):
        yield start, min(n_boot, start + step)


@dataclass
class BootstrapResult:
    """Percentile bootstrap CI of the AUC."""

    auc: float
    ci_low: float
    ci_high: float
    conf_level: float
    n_boot: int
    n_failed: int
    clustered: bool
    seed: Any
    aucs: np.ndarray = field(repr=False)

    def as_dict(self) -> dict:
        """The scalar fields as a plain dict."""
        d = dataclasses.asdict(self)
        d.pop("aucs")
        return d


def bootstrap_auc(y, score, n_boot: int = 2000, conf_level: float = 0.95, groups=None, seed=0,
                  direction: str = "<") -> BootstrapResult:
    """Stratified (optionally patient-clustered) percentile bootstrap CI of the AUC, vectorised.

    Replicates are drawn as weights by :func:`bootstrap_weights`; each replicate's AUC is
    sum_k P_k (Q_<k + Q_k/2) / (sum P sum Q), with P_k, Q_k the weighted numbers of positives and negatives
    at the k-th distinct score and Q_<k those below it (ties count 1/2), computed for all replicates at
    once with a sparse indicator product. CI = the (1-conf)/2 and (1+conf)/2 quantiles (type 7, as R's
    ``quantile``) of the replicate AUCs, as pROC ``ci.auc(method='bootstrap', stratified=TRUE)``.
    A clustered replicate that happens to lack one class is dropped and counted in ``n_failed``.
    Same ``seed``, same result.
    """
    yy = check_binary(y)
    s = _orient(_scores(score, n=yy.size), direction)
    _both_classes(yy, "outcome")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; got {n_boot}")
    W = bootstrap_weights(yy, n_boot, groups, seed)
    aucs = np.empty(n_boot)
    for a, b in _chunks(n_boot, yy.size):
        _, P, Q = _weighted_class_counts(yy, s, W[a:b])
        aucs[a:b] = _weighted_auc(P, Q)
    ok = np.isfinite(aucs)
    alpha = 1.0 - conf_level
    lo, hi = np.quantile(aucs[ok], [alpha / 2, 1 - alpha / 2]) if ok.any() else (np.nan, np.nan)
    point = float(_placements(yy, s[None, :])[0][0])
    return BootstrapResult(point, float(lo), float(hi), conf_level, n_boot, int((~ok).sum()),
                           groups is not None, seed, aucs)


def roc_confidence_band(y, score, n_boot: int = 500, conf_level: float = 0.95, groups=None, seed=0,
                        fpr_grid=None, direction: str = "<") -> pd.DataFrame:
    """Pointwise bootstrap band of sensitivity at fixed false-positive rates (pROC ``ci.se``).

    For each replicate (:func:`bootstrap_weights`) the empirical ROC curve is built from weighted counts
    and its sensitivity is read at each FPR of ``fpr_grid`` (default 0, 0.01, ..., 1) by linear
    interpolation; the band is the (1-conf)/2 and (1+conf)/2 quantiles across replicates. Returns columns
    fpr, tpr_low, tpr_median, tpr_high.
    """
    yy = check_binary(y)
    s = _orient(_scores(score, n=yy.size), direction)
    _both_classes(yy, "outcome")
    grid = np.linspace(0.0, 1.0, 101) if fpr_grid is None else np.asarray(fpr_grid, dtype=float)
    W = bootstrap_weights(yy, n_boot, groups, seed)
    tprs = np.full((n_boot, grid.size), np.nan)
    for a, b in _chunks(n_boot, yy.size):
        _, P, Q = _weighted_class_counts(yy, s, W[a:b])
        # called positive at score >= u_k: counts from the top; prepend the "nobody positive" point
        tp = np.concatenate([np.zeros((b - a, 1)), np.cumsum(P[:, ::-1], axis=1)], axis=1)
        fp = np.concatenate([np.zeros((b - a, 1)), np.cumsum(Q[:, ::-1], axis=1)], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            tpr = tp / tp[:, -1:]
            fpr = fp / fp[:, -1:]
        for i in range(b - a):
            if np.isfinite(tpr[i, -1]) and np.isfinite(fpr[i, -1]):
                tprs[a + i] = np.interp(grid, fpr[i], tpr[i])
    alpha = 1.0 - conf_level
    ok = np.isfinite(tprs[:, 0])
    q = np.quantile(tprs[ok], [alpha / 2, 0.5, 1 - alpha / 2], axis=0)
    return pd.DataFrame({"fpr": grid, "tpr_low": q[0], "tpr_median": q[1], "tpr_high": q[2]})


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


# ---------------------------------------------------------------------------------------------- model

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


# ---------------------------------------------------------------------------------------- calibration

def _logit(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(p / (1.0 - p))


def _calib_fit(y: np.ndarray, lp: np.ndarray):
    """Logistic recalibration y ~ a + b logit(p) by Newton-Raphson (statsmodels Logit, tight tolerance)."""
    import statsmodels.api as sm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = sm.Logit(y, np.column_stack([np.ones_like(lp), lp])).fit(disp=0, method="newton", tol=1e-12,
                                                                       maxiter=200)
    return f


def _prob_inputs(y, p, name="predicted probability"):
    yy = check_binary(y)
    pp = np.asarray(p, dtype=float)
    if pp.shape != yy.shape:
        raise ValueError(f"{name} has shape {pp.shape}; expected {yy.shape} (one per outcome)")
    if np.isnan(pp).any() or (pp < 0).any() or (pp > 1).any():
        raise ValueError(f"{name} must lie in [0, 1] without NaN")
    return yy, pp


def val_prob(y, p) -> dict:
    """Validation statistics of predicted probabilities, as R rms 6.5 ``val.prob(p, y, pl=FALSE)``.

    Probabilities of exactly 0 or 1 (infinite logit) are excluded, as rms does. With L = logit(p),
    n cases, L0 = -2 log-likelihood of the intercept-only model, L01 = -2 sum(y L - log(1 + e^L)) (the
    predictions taken as they are) and Ldev = -2 log-likelihood of the recalibration y ~ a + b L:
    - Dxy = 2 (C - 0.5), C = AUC (Somers' D and concordance, ties 1/2);
    - D:Chi-sq = L0 - L01, D = (D:Chi-sq - 1)/n (discrimination index), D:p = NaN (rms leaves it NA);
    - R2 = (1 - exp(-(L0 - L01)/n)) / (1 - exp(-L0/n)) (Nagelkerke's R2 of the predictions as given);
    - U:Chi-sq = L01 - Ldev, U = (U:Chi-sq - 2)/n (unreliability), U:p = P(chi2_2 > U:Chi-sq);
    - Q = D - U (quality); Brier = mean((p - y)^2);
    - Intercept, Slope = a, b of the recalibration (the intercept with the slope free, not
      calibration-in-the-large; see :func:`calibration_in_the_large`);
    - Emax, E90, Eavg = max, 0.9 quantile (type 7) and mean of |p - s(p)| where s is the lowess smooth of
      y on p with rms' settings: R ``lowess(p, y, iter=0)`` = f 2/3, delta 0.01 range(p) (statsmodels
      ``lowess(frac=2/3, it=0, delta=0.01*range)``);
    - S:z, S:p = Spiegelhalter's z and two-sided p (:func:`spiegelhalter`).
    Keys are rms' names.
    """
    from statsmodels.nonparametric.smoothers_lowess import lowess

    yy, pp = _prob_inputs(y, p)
    lp = _logit(pp)
    keep = np.isfinite(lp)
    if not keep.all():
        warnings.warn(f"val_prob: {int((~keep).sum())} probabilities of exactly 0 or 1 excluded (as rms)")
        yy, pp, lp = yy[keep], pp[keep], lp[keep]
    _both_classes(yy, "outcome")
    n = yy.size
    ybar = yy.mean()
    L0 = -2.0 * (yy.sum() * math.log(ybar) + (n - yy.sum()) * math.log(1 - ybar))
    L01 = -2.0 * float(np.sum(yy * lp - np.logaddexp(0.0, lp)))
    fit = _calib_fit(yy, lp)
    Ldev = -2.0 * float(fit.llf)
    lr = L0 - L01
    C = float(_placements(yy, pp[None, :])[0][0])
    U_chi = L01 - Ldev
    D = (lr - 1.0) / n
    U = (U_chi - 2.0) / n
    sm_y = lowess(yy.astype(float), pp, frac=2.0 / 3.0, it=0, delta=0.01 * float(np.ptp(pp)),
                  return_sorted=False)
    err = np.abs(pp - sm_y)
    z, zp = spiegelhalter(yy, pp)
    return {"Dxy": 2.0 * (C - 0.5), "C (ROC)": C, "R2": (1 - math.exp(-lr / n)) / (1 - math.exp(-L0 / n)),
            "D": D, "D:Chi-sq": lr, "D:p": float("nan"), "U": U, "U:Chi-sq": U_chi,
            "U:p": float(_sps.chi2.sf(U_chi, 2)), "Q": D - U, "Brier": float(np.mean((pp - yy) ** 2)),
            "Intercept": float(fit.params[0]), "Slope": float(fit.params[1]), "Emax": float(err.max()),
            "E90": float(np.quantile(err, 0.9)), "Eavg": float(err.mean()), "S:z": z, "S:p": zp}


def spiegelhalter(y, p) -> tuple[float, float]:
    """Spiegelhalter's (1986) z test of calibration and its two-sided p.

    z = sum((y - p)(1 - 2p)) / sqrt(sum((1 - 2p)^2 p (1 - p))), p = 2 Phi(-|z|) (as rms ``val.prob``).
    """
    yy, pp = _prob_inputs(y, p)
    den = math.sqrt(float(np.sum((1 - 2 * pp) ** 2 * pp * (1 - pp))))
    z = float(np.sum((yy - pp) * (1 - 2 * pp))) / den if den > 0 else float("nan")
    return z, float(2.0 * _sps.norm.sf(abs(z)))


def calibration_in_the_large(y, p) -> float:
    """Calibration-in-the-large: intercept a of logit P(y=1) = a + logit(p) (slope fixed at 1, offset).

    0 means the mean risk is right; > 0 means risks are too low on average. Fitted by a binomial GLM with
    offset (statsmodels), excluding probabilities of exactly 0 or 1.
    """
    import statsmodels.api as sm

    yy, pp = _prob_inputs(y, p)
    lp = _logit(pp)
    ok = np.isfinite(lp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = sm.GLM(yy[ok], np.ones((int(ok.sum()), 1)), family=sm.families.Binomial(), offset=lp[ok]).fit(
            tol=1e-12, maxiter=200)
    return float(f.params[0])


def _quantile_groups(p: np.ndarray, g: int) -> np.ndarray:
    """Group index by quantiles of p: breaks at the type-7 quantiles 0, 1/g, ..., 1 (duplicates merged),
    right-closed intervals with the lowest included (R ``cut(p, quantile(p, 0:g/g), include.lowest=TRUE)``)."""
    br = np.unique(np.quantile(p, np.linspace(0.0, 1.0, g + 1)))
    if br.size < 2:
        return np.zeros(p.size, dtype=int)
    idx = np.searchsorted(br, p, side="left") - 1
    return np.clip(idx, 0, br.size - 2)


def hosmer_lemeshow(y, p, n_groups: int = 10) -> dict:
    """Hosmer-Lemeshow goodness-of-fit test over quantile groups of the predicted risk.

    Groups as :func:`calibration_bins`. H = sum_g (O1_g - E1_g)^2 / E1_g + (O0_g - E0_g)^2 / E0_g with
    O = observed and E = expected (sum of p) events and non-events; df = G - 2 (Hosmer & Lemeshow 1980,
    the development-sample convention; for an external cohort G is sometimes used, reported as p_df_G);
    p = P(chi2_df > H).
    """
    yy, pp = _prob_inputs(y, p)
    gi = _quantile_groups(pp, n_groups)
    G = int(gi.max()) + 1
    o1 = np.bincount(gi, weights=yy, minlength=G)
    e1 = np.bincount(gi, weights=pp, minlength=G)
    nn = np.bincount(gi, minlength=G).astype(float)
    o0, e0 = nn - o1, nn - e1
    with np.errstate(divide="ignore", invalid="ignore"):
        H = float(np.nansum((o1 - e1) ** 2 / e1 + (o0 - e0) ** 2 / e0))
    df = G - 2
    return {"statistic": H, "df": df, "p": float(_sps.chi2.sf(H, df)) if df > 0 else float("nan"),
            "p_df_G": float(_sps.chi2.sf(H, G)), "groups": G}


def calibration_bins(y, p, n_bins: int = 10, conf_level: float = 0.95) -> pd.DataFrame:
    """Binned calibration curve: ``n_bins`` quantile groups of the predicted risk.

    Breaks at the type-7 quantiles of p (duplicate breaks merged, so ties may give fewer bins), intervals
    right-closed with the lowest included. Per bin: n, events, mean predicted risk, observed event rate
    with its Wilson CI.
    """
    yy, pp = _prob_inputs(y, p)
    gi = _quantile_groups(pp, n_bins)
    rows = []
    for g in range(int(gi.max()) + 1):
        sel = gi == g
        k, nn = int(yy[sel].sum()), int(sel.sum())
        lo, hi = wilson_ci(k, nn, conf_level)
        rows.append({"bin": g + 1, "n": nn, "events": k, "p_min": float(pp[sel].min()) if nn else np.nan,
                     "p_max": float(pp[sel].max()) if nn else np.nan,
                     "mean_predicted": float(pp[sel].mean()) if nn else np.nan,
                     "observed": k / nn if nn else np.nan, "observed_ci_low": lo, "observed_ci_high": hi})
    return pd.DataFrame(rows)


def calibration_smooth(y, p) -> pd.DataFrame:
    """The lowess calibration curve of rms ``val.prob``: y on p, f = 2/3, iter = 0, delta = 0.01 range(p).

    Returns columns predicted (sorted p) and observed (smoothed event rate), one row per node.
    """
    from statsmodels.nonparametric.smoothers_lowess import lowess

    yy, pp = _prob_inputs(y, p)
    out = lowess(yy.astype(float), pp, frac=2.0 / 3.0, it=0, delta=0.01 * float(np.ptp(pp)))
    return pd.DataFrame({"predicted": out[:, 0], "observed": out[:, 1]})


@dataclass
class CalibrationResult:
    """Calibration of predicted risks in one cohort."""

    summary: dict
    bins: pd.DataFrame
    smooth: pd.DataFrame

    def as_dict(self) -> dict:
        """The summary dict."""
        return dict(self.summary)


def calibration_summary(y, p, n_bins: int = 10, conf_level: float = 0.95) -> CalibrationResult:
    """Everything about calibration in one call.

    ``summary``: n, events, mean predicted risk, observed rate, calibration-in-the-large
    (:func:`calibration_in_the_large`), calibration slope and intercept (rms ``Slope``/``Intercept``),
    Brier and scaled Brier = 1 - Brier / (ybar (1 - ybar)), Emax/E90/Eavg, Spiegelhalter z/p,
    Hosmer-Lemeshow statistic/df/p (:func:`hosmer_lemeshow`) and every rms ``val.prob`` statistic
    (:func:`val_prob`, under its rms name; like rms, those leave out risks of exactly 0 or 1, counted in
    ``n_risk_exactly_0_or_1``, whereas ``brier`` and ``brier_scaled`` use every node).
    ``bins``: :func:`calibration_bins`. ``smooth``: :func:`calibration_smooth`.
    """
    yy, pp = _prob_inputs(y, p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # counted below instead
        vp = val_prob(yy, pp)
    ybar = float(yy.mean())
    brier = float(np.mean((pp - yy) ** 2))
    hl = hosmer_lemeshow(yy, pp, n_bins)
    s = {"n": int(yy.size), "events": int(yy.sum()), "mean_predicted": float(pp.mean()), "observed_rate": ybar,
         "calibration_in_the_large": calibration_in_the_large(yy, pp), "calibration_slope": vp["Slope"],
         "calibration_intercept": vp["Intercept"], "brier": brier,
         "brier_scaled": 1.0 - brier / (ybar * (1 - ybar)), "emax": vp["Emax"], "e90": vp["E90"],
         "eavg": vp["Eavg"], "spiegelhalter_z": vp["S:z"], "spiegelhalter_p": vp["S:p"],
         "hosmer_lemeshow": hl["statistic"], "hosmer_lemeshow_df": hl["df"], "hosmer_lemeshow_p": hl["p"],
         "n_risk_exactly_0_or_1": int(np.sum((pp == 0) | (pp == 1)))}
    s.update({f"rms {k}": v for k, v in vp.items()})
    return CalibrationResult(s, calibration_bins(yy, pp, n_bins, conf_level), calibration_smooth(yy, pp))


# ----------------------------------------------------------------------------------- decision curve

def decision_curve(y, p, thresholds: Sequence[float] | None = None) -> pd.DataFrame:
    """Net benefit of the model, treat-all and treat-none over a threshold grid, by ``dcurves.dca``.

    Net benefit at threshold probability t (Vickers & Elkin 2006):
    NB = TP/N - FP/N * t/(1 - t), a node being treated when p >= t; treat-all uses p = 1 for everyone,
    treat-none p = 0 (NB 0). Default grid 0.01, 0.02, ..., 0.99. Returns one row per threshold with
    net_benefit_model, net_benefit_all, net_benefit_none, the model's test_pos_rate, tp_rate, fp_rate and
    net_intervention_avoided (per node), as computed by ``dcurves.dca`` (columns renamed, values as is).
    """
    from dcurves import dca

    yy, pp = _prob_inputs(y, p)
    thr = list(DEFAULT_DCA_THRESHOLDS if thresholds is None else thresholds)
    res = dca(data=pd.DataFrame({"outcome": yy.astype(int), "model": pp}), outcome="outcome",
              modelnames=["model"], thresholds=thr)
    wide = {"threshold": np.asarray(thr, dtype=float)}
    for name in ("model", "all", "none"):
        sub = res[res["model"] == name].reset_index(drop=True)
        wide[f"net_benefit_{name}"] = sub["net_benefit"].to_numpy(dtype=float)
        if name == "model":
            for col in ("test_pos_rate", "tp_rate", "fp_rate", "net_intervention_avoided"):
                wide[col] = sub[col].to_numpy(dtype=float)
    out = pd.DataFrame(wide)
    out.insert(1, "n", yy.size)
    out.insert(2, "prevalence", float(yy.mean()))
    return out


# --------------------------------------------------------------------------------- cohort measures

def cohort_metrics(y, p, threshold: float, *, groups=None, n_bootstrap: int = 0, seed=0,
                   conf_level: float = 0.95) -> pd.DataFrame:
    """All discrimination measures of one cohort at a frozen threshold.

    Rows: AUC with DeLong CI (:func:`delong_auc`, direction '<'); when ``n_bootstrap`` > 0 also the AUC
    with stratified percentile bootstrap CI (:func:`bootstrap_auc`, patient-clustered when ``groups``);
    sensitivity, specificity, PPV, NPV, accuracy at ``threshold`` with Wilson CIs
    (:func:`threshold_metrics`); Brier score (no CI). Columns measure, estimate, ci_low, ci_high, count,
    total, method.
    """
    yy, pp = check_binary(y), _scores(p, "predicted risk")
    r = delong_auc(yy, pp, "<", conf_level)
    rows = [{"measure": "AUC", "estimate": r.auc, "ci_low": r.ci_low, "ci_high": r.ci_high,
             "count": r.n_pos, "total": r.n_pos + r.n_neg, "method": "DeLong"}]
    if n_bootstrap:
        b = bootstrap_auc(yy, pp, n_bootstrap, conf_level, groups, seed)
        rows.append({"measure": "AUC", "estimate": b.auc, "ci_low": b.ci_low, "ci_high": b.ci_high,
                     "count": r.n_pos, "total": r.n_pos + r.n_neg,
                     "method": f"bootstrap ({n_bootstrap}, stratified{', patient-clustered' if groups is not None else ''}, percentile)"})
    t = threshold_metrics(yy, pp, threshold, conf_level)
    rows.extend(t.to_dict("records"))
    rows.append({"measure": "Brier", "estimate": float(np.mean((pp - yy) ** 2)), "ci_low": np.nan,
                 "ci_high": np.nan, "count": np.nan, "total": yy.size, "method": "mean squared error"})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------- orchestration

def software_versions() -> dict:
    """Versions of Python, rlnfast and every library the statistics rely on."""
    import importlib

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for mod in ("rlnfast", "numpy", "scipy", "pandas", "sklearn", "statsmodels", "dcurves", "matplotlib"):
        try:
            out["scikit-learn" if mod == "sklearn" else mod] = importlib.import_module(mod).__version__
        except Exception:  # pragma: no cover - a missing optional library is reported, not fatal
            out[mod] = "not installed"
    return out


def validate_table(df: pd.DataFrame, outcome: str, cohort: str, patient: str | None = None,
                   training_label: str = "training", validation_label: str = "validation") -> None:
    """Check a feature table before analysis; raise ``ValueError`` naming the column and the expectation.

    Checks: the outcome, cohort and patient columns exist; the outcome is 0/1 without missing values; every
    cohort value is ``training_label`` or ``validation_label`` and both occur; each cohort has both
    outcome classes; the patient column has no missing ids.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"feature table must be a pandas DataFrame; got {type(df).__name__}")
    for role, col in (("outcome", outcome), ("cohort", cohort), ("patient", patient)):
        if col is not None and col not in df.columns:
            raise ValueError(f"{role} column {col!r} not found in the feature table; "
                             f"columns are {list(map(str, df.columns))[:30]}")
    y = check_binary(df[outcome].to_numpy(), f"outcome column {outcome!r}")
    labels = df[cohort].astype(str)
    unexpected = sorted(set(labels) - {training_label, validation_label})
    if unexpected:
        raise ValueError(f"cohort column {cohort!r} must hold only {training_label!r} or {validation_label!r}; "
                         f"found also {unexpected[:10]}")
    for lab in (training_label, validation_label):
        sel = (labels == lab).to_numpy()
        if not sel.any():
            raise ValueError(f"cohort column {cohort!r} has no rows labelled {lab!r}; expected both "
                             f"{training_label!r} and {validation_label!r}")
        ys = y[sel]
        if ys.min() == ys.max():
            raise ValueError(f"cohort {lab!r} (column {cohort!r}) has only outcome {int(ys[0])} in column "
                             f"{outcome!r} (n={ys.size}); both classes 0 and 1 are needed")
    if patient is not None and df[patient].isna().any():
        raise ValueError(f"patient column {patient!r} has {int(df[patient].isna().sum())} missing id(s); "
                         "expected an id for every node")


@dataclass
class AnalysisResult:
    """Everything :func:`analyze` computed; :func:`rlnfast.report.write_report` renders it."""

    settings: dict
    versions: dict
    cohorts: pd.DataFrame
    screening: pd.DataFrame
    selection: Selection
    model: Any
    model_table: pd.DataFrame
    threshold: YoudenResult
    predictions: pd.DataFrame
    performance: pd.DataFrame
    calibration: dict
    decision_curves: dict
    comparisons: pd.DataFrame
    data: pd.DataFrame = field(repr=False)
    notes: list = field(default_factory=list)
    files: dict = field(default_factory=dict)

    @property
    def features(self) -> list:
        """The features in the model."""
        return list(self.selection.selected)

    def cohort_data(self, label: str):
        """(y, risk, patient ids or None) of one cohort from the predictions table."""
        sub = self.predictions[self.predictions["cohort"] == label]
        g = sub["patient"].to_numpy() if "patient" in sub.columns else None
        return sub["outcome"].to_numpy(dtype=int), sub["risk"].to_numpy(dtype=float), g

    def summary(self) -> pd.DataFrame:
        """Headline numbers: per cohort AUC (DeLong CI), sensitivity, specificity, PPV, NPV, calibration."""
        rows = []
        for lab in self.settings["cohort_labels"]:
            perf = self.performance[self.performance.cohort == lab]
            for _, r in perf.iterrows():
                rows.append({"cohort": lab, "measure": r.measure, "estimate": r.estimate, "ci_low": r.ci_low,
                             "ci_high": r.ci_high, "method": r.method})
            c = self.calibration[lab].summary
            for k in ("calibration_in_the_large", "calibration_slope", "brier_scaled", "emax", "eavg"):
                rows.append({"cohort": lab, "measure": k, "estimate": c[k], "ci_low": np.nan, "ci_high": np.nan,
                             "method": "val.prob / logistic recalibration"})
        return pd.DataFrame(rows)


# Columns of rlnfast / pyradiomics batch tables that identify a node or a case; never predictors.
IDENTIFIER_COLUMNS = ("ID", "Image", "Mask", "Label", "label", "source_label", "component")


def default_features(df: pd.DataFrame, exclude=()) -> list:
    """The predictor columns of a feature table when none are named: every column except ``exclude``, the
    ``diagnostics_*`` columns and the identifiers of rlnfast/pyradiomics tables (``IDENTIFIER_COLUMNS``:
    a node's ``label`` or ``component`` is not a predictor). Non-numeric columns stay in and get a reason
    in the screening table, so nothing is dropped silently."""
    skip = set(exclude) | set(IDENTIFIER_COLUMNS)
    return [c for c in df.columns if c not in skip and not str(c).startswith("diagnostics_")]


def analyze(df: pd.DataFrame, outcome: str, cohort: str, patient: str | None = None,
            features: Sequence[str] | None = None, *, exclude: Sequence[str] = (),
            training_label: str = "training", validation_label: str = "validation", estimator=None,
            p_max: float | None = 0.05, p_column: str = "mwu_p", q_max: float | None = None,
            auc_min: float | None = 0.6, corr_max: float | None = 0.8, lasso: bool = False,
            max_features: int | None = None, tie: str = "sensitivity", n_bootstrap: int = 2000,
            n_bins: int = 10, dca_thresholds: Sequence[float] | None = None,
            dca_report_range: tuple = DEFAULT_DCA_REPORT_RANGE, conf_level: float = 0.95, seed: int = 0,
            out_dir=None, title: str = "rlnfast analysis", extra_sections=None) -> AnalysisResult:
    """The study's statistics on a node-level feature table, from screening to decision curves.

    1. :func:`validate_table`; features = ``features`` or :func:`default_features` (every column except
       outcome/cohort/patient, ``exclude``, ``diagnostics_*`` and node/case identifiers such as ``label``);
    2. on the training cohort: :func:`screen_features`, :func:`select_features` (thresholds, correlation
       pruning, optional LASSO grouped by patient), :func:`fit_model` (default :func:`default_model`), and
       the Youden threshold on the training predictions (:func:`youden_threshold`, tie rule ``tie``),
       then frozen;
    3. per cohort, with the frozen model and threshold: :func:`cohort_metrics` (DeLong AUC CI, optional
       bootstrap CI clustered by patient, sensitivity/specificity/PPV/NPV with Wilson CIs),
       :func:`calibration_summary`, :func:`decision_curve`;
    4. comparisons: unpaired DeLong test training vs validation (:func:`delong_unpaired_test`) and, in
       each cohort, paired DeLong tests of the model against each selected feature alone, oriented by its
       training direction (:func:`delong_paired_test`; nodes missing that feature are left out of that
       test only, ``n`` says how many were used).
    With ``out_dir``, :func:`rlnfast.report.write_report` writes CSV tables, PNG figures and report.html
    there (``extra_sections``: (title, DataFrame) pairs appended to the report).
    """
    validate_table(df, outcome, cohort, patient, training_label, validation_label)
    roles = {outcome, cohort} | ({patient} if patient else set())
    if features is None:
        features = default_features(df, exclude=set(exclude) | roles)
    else:
        features = list(features)
        missing = [f for f in features if f not in df.columns]
        if missing:
            raise ValueError(f"feature column(s) {missing} not found in the feature table")
        bad = [f for f in features if f in roles]
        if bad:
            raise ValueError(f"feature(s) {bad} are the outcome/cohort/patient column; expected predictors")
    if not features:
        raise ValueError("no feature columns: expected at least one column besides outcome/cohort/patient")
    labels = df[cohort].astype(str)
    data = df.reset_index(drop=True).copy()
    data["_cohort"] = labels.to_numpy()
    data[outcome] = check_binary(data[outcome].to_numpy(), f"outcome column {outcome!r}").astype(int)
    train = data[data["_cohort"] == training_label]
    cohort_labels = [training_label, validation_label]

    screening = screen_features(train, features, outcome, conf_level)
    tgroups = train[patient].to_numpy() if patient else None
    selection = select_features(screening, train, outcome, p_max=p_max, p_column=p_column, q_max=q_max,
                                auc_min=auc_min, corr_max=corr_max, lasso=lasso, groups=tgroups,
                                max_features=max_features, seed=seed)
    sel = selection.selected
    model = fit_model(train, sel, outcome, estimator, seed)
    risk = predict_risk(model, data, sel)
    thr = youden_threshold(train[outcome].to_numpy(), risk[(data["_cohort"] == training_label).to_numpy()], tie)

    pred = pd.DataFrame({"row": np.arange(len(data)), "cohort": data["_cohort"].to_numpy(),
                         "outcome": data[outcome].to_numpy(int)})
    if patient:
        pred["patient"] = data[patient].to_numpy()
    pred["risk"] = risk
    pred["predicted_class"] = (risk >= thr.threshold).astype(int)

    cohorts_rows, perf, calib, dcs = [], [], {}, {}
    for lab in cohort_labels:
        m = (data["_cohort"] == lab).to_numpy()
        yv, pv = data.loc[m, outcome].to_numpy(int), risk[m]
        g = data.loc[m, patient].to_numpy() if patient else None
        nmiss = int(data.loc[m, sel].isna().sum().sum())
        cohorts_rows.append({"cohort": lab, "nodes": int(m.sum()),
                             "patients": int(pd.unique(g).size) if patient else np.nan,
                             "events": int(yv.sum()), "non_events": int(m.sum() - yv.sum()),
                             "prevalence": float(yv.mean()), "missing_values_in_model_features": nmiss})
        t = cohort_metrics(yv, pv, thr.threshold, groups=g, n_bootstrap=n_bootstrap, seed=seed,
                           conf_level=conf_level)
        t.insert(0, "cohort", lab)
        perf.append(t)
        calib[lab] = calibration_summary(yv, pv, n_bins, conf_level)
        dcs[lab] = decision_curve(yv, pv, dca_thresholds)

    comps = []
    (y1, p1), (y2, p2) = [(data.loc[(data["_cohort"] == lab).to_numpy(), outcome].to_numpy(int),
                           risk[(data["_cohort"] == lab).to_numpy()]) for lab in cohort_labels]
    u = delong_unpaired_test(y1, p1, y2, p2, conf_level=conf_level)
    comps.append({"test": "unpaired DeLong", "cohort": f"{training_label} vs {validation_label}",
                  "n": int(y1.size + y2.size),
                  "a": f"model ({training_label})", "b": f"model ({validation_label})", "auc_a": u.auc_1,
                  "auc_b": u.auc_2, "difference": u.difference, "statistic": u.D, "statistic_name": "D",
                  "df": u.df, "p": u.p, "ci_low": u.ci_low, "ci_high": u.ci_high})
    direction = screening.set_index("feature")["direction"]
    for lab in cohort_labels:
        m = (data["_cohort"] == lab).to_numpy()
        yv, pv = data.loc[m, outcome].to_numpy(int), risk[m]
        for f in sel:
            x = data.loc[m, f].to_numpy(dtype=float)
            ok = np.isfinite(x)
            if ok.sum() < 3 or yv[ok].min() == yv[ok].max():
                continue
            xs = x if direction[f] == "<" else -x
            r = delong_paired_test(yv[ok], pv[ok], xs[ok], conf_level=conf_level)
            comps.append({"test": "paired DeLong", "cohort": lab, "n": int(ok.sum()), "a": "model",
                          "b": f"{f} ({'higher' if direction[f] == '<' else 'lower'} = positive)",
                          "auc_a": r.auc_a, "auc_b": r.auc_b, "difference": r.difference, "statistic": r.z,
                          "statistic_name": "z", "df": np.nan, "p": r.p, "ci_low": r.ci_low, "ci_high": r.ci_high})

    settings = {
        "outcome": outcome, "cohort": cohort, "patient": patient, "training_label": training_label,
        "validation_label": validation_label, "cohort_labels": cohort_labels, "n_candidate_features": len(features),
        "p_max": p_max, "p_column": p_column, "q_max": q_max, "auc_min": auc_min, "corr_max": corr_max,
        "lasso": lasso, "max_features": max_features, "estimator": repr(model) if estimator is not None else
        "default: median imputation + StandardScaler + LogisticRegression(C=1, L2)", "threshold_rule":
        f"Youden J maximised on the {training_label} cohort (pROC threshold grid: midpoints between adjacent "
        f"scores; ties -> highest {tie}), frozen for {validation_label}", "tie": tie, "n_bootstrap": n_bootstrap,
        "n_bins": n_bins, "dca_thresholds": "0.01-0.99 step 0.01" if dca_thresholds is None else list(dca_thresholds),
        "dca_report_range": list(dca_report_range), "conf_level": conf_level, "seed": seed,
    }
    result = AnalysisResult(settings=settings, versions=software_versions(), cohorts=pd.DataFrame(cohorts_rows),
                            screening=screening, selection=selection, model=model,
                            model_table=model_table(model, sel), threshold=thr, predictions=pred,
                            performance=pd.concat(perf, ignore_index=True), calibration=calib,
                            decision_curves=dcs, comparisons=pd.DataFrame(comps), data=data,
                            notes=list(selection.notes))
    if out_dir is not None:
        from .report import write_report

        write_report(result, out_dir, title=title, extra_sections=extra_sections)
    return result
