"""Stratified (optionally patient-clustered) bootstraps of the AUC and of the ROC curve, vectorised over
replicates (no Python loop over resamples).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .checks import _both_classes, _orient, _scores, check_binary
from .roc import _placements

__all__ = ["BootstrapResult", "bootstrap_weights", "bootstrap_auc", "roc_confidence_band"]


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
