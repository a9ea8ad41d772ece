"""Patient-clustered discrimination: Obuchowski's (1997) clustered AUC and its paired test, and clustered
intervals for sensitivity and specificity.

Several nodes of one patient are not independent; node-level DeLong and Wilson intervals are then too
narrow. Obuchowski's nonparametric estimator keeps the AUC (the Mann-Whitney statistic over all nodes)
and replaces DeLong's variance by one built from patient sums of the structural components; with one
node per patient it is exactly DeLong's (tested). Proportions use the ratio-estimator variance for
cluster samples (Rao & Scott 1992), turned into a Wilson interval on the effective sample size.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _sps

from .checks import _both_classes, _orient, _scores, _z, check_binary
from .roc import _placements

__all__ = ["ClusteredAUCResult", "ClusteredPairedResult", "clustered_auc_cov", "obuchowski_auc",
           "obuchowski_paired_test", "clustered_proportion_ci"]


def _codes(groups, n: int) -> np.ndarray:
    g = pd.Series(np.asarray(groups, dtype=object)).reset_index(drop=True)
    if g.size != n:
        raise ValueError(f"groups has {g.size} values; expected {n} (one patient id per node)")
    if g.isna().any():
        raise ValueError(f"groups (patient ids) has {int(g.isna().sum())} missing value(s); expected an id per node")
    return pd.factorize(g)[0]


def clustered_auc_cov(y, scores, groups):
    """AUCs of k scores on the same nodes and their k x k covariance under patient clustering.

    Obuchowski (1997, Biometrics 53:567-578), nonparametric: with I patients, m_i positive and n_i negative
    nodes in patient i (M, N in all), V10 and V01 the DeLong structural components of each node
    (fraction of all negatives below a positive / of all positives above a negative, ties 1/2), and the
    patient sums A_i = sum V10 - m_i AUC, B_i = sum V01 - n_i AUC (per score):
        S10 = I10 / ((I10 - 1) M) sum_i A_i A_i',  S01 = I01 / ((I01 - 1) N) sum_i B_i B_i',
        S11 = I / (I - 1) sum_i A_i B_i'
        Cov = S10 / M + S01 / N + (S11 + S11') / (M N)
    (I10, I01: patients with at least one positive / negative node). One node per patient gives DeLong's
    covariance exactly. Returns (aucs, cov, number of patients).
    """
    yy = check_binary(y)
    S = np.atleast_2d(np.asarray(scores, dtype=float))
    if S.shape[1] != yy.size:
        raise ValueError(f"scores have {S.shape[1]} values per row; expected {yy.size} (one per outcome)")
    if not np.isfinite(S).all():
        raise ValueError("scores must be finite")
    _both_classes(yy, "outcome")
    codes = _codes(groups, yy.size)
    aucs, v10, v01 = _placements(yy, S)
    k, ncl = S.shape[0], int(codes.max()) + 1
    cpos, cneg = codes[yy == 1], codes[yy == 0]
    m_i = np.bincount(cpos, minlength=ncl).astype(float)
    n_i = np.bincount(cneg, minlength=ncl).astype(float)
    M, N = m_i.sum(), n_i.sum()
    A = np.stack([np.bincount(cpos, weights=v10[r], minlength=ncl) for r in range(k)]) - np.outer(aucs, m_i)
    B = np.stack([np.bincount(cneg, weights=v01[r], minlength=ncl) for r in range(k)]) - np.outer(aucs, n_i)
    I10, I01, I = int((m_i > 0).sum()), int((n_i > 0).sum()), ncl
    with np.errstate(invalid="ignore", divide="ignore"):
        S10 = (I10 / ((I10 - 1) * M)) * (A @ A.T) if I10 > 1 else np.full((k, k), np.nan)
        S01 = (I01 / ((I01 - 1) * N)) * (B @ B.T) if I01 > 1 else np.full((k, k), np.nan)
        S11 = (I / (I - 1)) * (A @ B.T) if I > 1 else np.full((k, k), np.nan)
    cov = S10 / M + S01 / N + (S11 + S11.T) / (M * N)
    return aucs, cov, I


@dataclass
class ClusteredAUCResult:
    """AUC with Obuchowski's clustered variance and normal-approximation CI."""

    auc: float
    variance: float
    se: float
    ci_low: float
    ci_high: float
    conf_level: float
    n_pos: int
    n_neg: int
    n_clusters: int
    direction: str

    def as_dict(self) -> dict:
        """The fields as a plain dict."""
        return dataclasses.asdict(self)


def obuchowski_auc(y, score, groups, direction: str = "<", conf_level: float = 0.95) -> ClusteredAUCResult:
    """AUC with a CI that accounts for several nodes per patient (Obuchowski 1997, :func:`clustered_auc_cov`).

    Same AUC as :func:`rlnfast.stats.delong_auc`; CI = AUC -/+ z sqrt(Var), clipped to [0, 1].
    ``direction`` as in :func:`rlnfast.stats.delong_auc` ('<': higher scores in outcome 1).
    """
    yy = check_binary(y)
    s = _orient(_scores(score, n=yy.size), direction)
    aucs, cov, ncl = clustered_auc_cov(yy, s[None, :], groups)
    auc, var = float(aucs[0]), float(cov[0, 0])
    se = math.sqrt(var) if var >= 0 else float("nan")
    z = _z(conf_level)
    return ClusteredAUCResult(auc, var, se, max(0.0, auc - z * se), min(1.0, auc + z * se), conf_level,
                              int(yy.sum()), int(yy.size - yy.sum()), ncl, direction)


@dataclass
class ClusteredPairedResult:
    """Paired comparison of two AUCs on the same nodes under patient clustering."""

    auc_a: float
    auc_b: float
    difference: float
    se: float
    z: float
    p: float
    ci_low: float
    ci_high: float
    conf_level: float
    n_clusters: int

    def as_dict(self) -> dict:
        """The fields as a plain dict."""
        return dataclasses.asdict(self)


def obuchowski_paired_test(y, score_a, score_b, groups, direction: str = "<",
                           conf_level: float = 0.95) -> ClusteredPairedResult:
    """Test of AUC_a = AUC_b for two scores on the same nodes, nodes clustered in patients.

    Var(d) = Cov_aa + Cov_bb - 2 Cov_ab from :func:`clustered_auc_cov`; z = d / sqrt(Var(d)),
    p = 2 Phi(-|z|). With one node per patient this is the paired DeLong test (pROC ``roc.test``).
    """
    yy = check_binary(y)
    a = _orient(_scores(score_a, "score_a", yy.size), direction)
    b = _orient(_scores(score_b, "score_b", yy.size), direction)
    aucs, cov, ncl = clustered_auc_cov(yy, np.vstack([a, b]), groups)
    d = float(aucs[0] - aucs[1])
    se = math.sqrt(max(float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]), 0.0))
    if se == 0.0 or not np.isfinite(se):
        z, p = 0.0, 1.0
    else:
        z = d / se
        p = float(2.0 * _sps.norm.sf(abs(z)))
    q = _z(conf_level)
    return ClusteredPairedResult(float(aucs[0]), float(aucs[1]), d, se, z, p, d - q * se, d + q * se,
                                 conf_level, ncl)


def clustered_proportion_ci(success, groups, conf_level: float = 0.95) -> tuple[float, float, float, float]:
    """A proportion over nodes clustered in patients, with a cluster-adjusted Wilson interval.

    ``success``: 0/1 per node (e.g. called positive, over the metastatic nodes for sensitivity).
    p = sum x / n; ratio-estimator variance V = I / (I - 1) sum_i (x_i - p n_i)^2 / n^2 over the I patients
    (x_i, n_i: successes and nodes of patient i); design effect deff = V / V_1 with V_1 = p (1 - p) / (n - 1)
    the same estimator when every node is its own patient (so one node per patient gives deff = 1 and the
    plain Wilson interval), at least 1 (never narrower than the node-level interval); Wilson interval on the
    effective sample size n / deff (Rao & Scott 1992). Returns (p, ci_low, ci_high, deff).
    """
    x = check_binary(success, "success")
    n = x.size
    if n == 0:
        return float("nan"), float("nan"), float("nan"), float("nan")
    codes = _codes(groups, n)
    ncl = int(codes.max()) + 1
    xi = np.bincount(codes, weights=x, minlength=ncl)
    ni = np.bincount(codes, minlength=ncl).astype(float)
    p = float(x.mean())
    binom = p * (1 - p) / (n - 1) if n > 1 else 0.0  # the same estimator with one node per patient
    if ncl > 1 and binom > 0:
        V = ncl / (ncl - 1) * float(np.sum((xi - p * ni) ** 2)) / n ** 2
        deff = max(1.0, V / binom)
    else:
        deff = 1.0
    neff = n / deff
    z = _z(conf_level)
    den = 1 + z * z / neff
    centre = (p + z * z / (2 * neff)) / den
    half = z * math.sqrt(p * (1 - p) / neff + z * z / (4 * neff * neff)) / den
    return p, max(0.0, centre - half), min(1.0, centre + half), deff
