"""Calibration of predicted risks: the summary of rms ``val.prob`` (Dxy, C, R2, D, U, Q, Brier, Intercept,
Slope, Emax, E90, Eavg, Spiegelhalter's z) plus calibration-in-the-large, scaled Brier, Hosmer-Lemeshow,
binned and lowess calibration curves (statsmodels for the logistic recalibration and the lowess).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _sps

from .checks import _both_classes, _prob_inputs, _z
from .roc import _placements, wilson_ci

__all__ = ["CalibrationResult", "calibration_ci", "val_prob", "spiegelhalter", "calibration_in_the_large", "hosmer_lemeshow",
           "calibration_bins", "calibration_smooth", "calibration_summary"]


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


def calibration_ci(y, p, conf_level: float = 0.95) -> dict:
    """Calibration-in-the-large and calibration slope with Wald confidence intervals (node-level).

    CITL: intercept a of logit P(y=1) = a + logit(p) (offset; :func:`calibration_in_the_large`); slope: b of
    the logistic recalibration y ~ a' + b logit(p) (rms ``Slope``). CIs = estimate -/+ z SE from the
    maximum-likelihood fits (statsmodels). Risks of exactly 0 or 1 are left out, as rms does.
    ``holds`` is True when the CITL interval contains 0 and the slope interval contains 1 (no evidence of
    miscalibration at this sample size; a wide interval is not proof of calibration).
    """
    import statsmodels.api as sm

    yy, pp = _prob_inputs(y, p)
    lp = _logit(pp)
    ok = np.isfinite(lp)
    yy, lp = yy[ok], lp[ok]
    _both_classes(yy, "outcome")
    z = _z(conf_level)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = sm.GLM(yy, np.ones((yy.size, 1)), family=sm.families.Binomial(), offset=lp).fit(tol=1e-12, maxiter=200)
    f = _calib_fit(yy, lp)
    citl, citl_se = float(g.params[0]), float(g.bse[0])
    slope, slope_se = float(f.params[1]), float(f.bse[1])
    out = {"citl": citl, "citl_ci_low": citl - z * citl_se, "citl_ci_high": citl + z * citl_se,
           "slope": slope, "slope_ci_low": slope - z * slope_se, "slope_ci_high": slope + z * slope_se,
           "conf_level": conf_level, "n": int(yy.size)}
    out["holds"] = bool(out["citl_ci_low"] <= 0 <= out["citl_ci_high"]
                        and out["slope_ci_low"] <= 1 <= out["slope_ci_high"])
    return out


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
