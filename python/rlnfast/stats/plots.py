"""Figures of the statistics layer: ROC, calibration, decision curve, feature distributions, LASSO path.

Every function draws on a matplotlib ``ax`` it is given (it never creates a window or calls ``show()``),
returns the numbers behind the figure as a DataFrame and, given ``csv_path``, writes them there so every
figure can be redrawn or checked without the image. Nothing here picks a matplotlib backend: the report
draws on ``matplotlib.figure.Figure`` objects, which render PNG through Agg without pyplot.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .bootstrap import roc_confidence_band
from .calibration import calibration_bins, calibration_in_the_large, calibration_smooth, val_prob
from .checks import check_binary
from .labels import feature_axis_label
from .roc import delong_auc, roc_points
from .selection import LassoResult

__all__ = ["plot_roc", "plot_calibration", "plot_decision_curve", "plot_decision_curves", "plot_feature", "plot_features",
           "plot_lasso_path", "new_figure"]

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _write(df: pd.DataFrame, csv_path) -> pd.DataFrame:
    if csv_path is not None:
        p = Path(csv_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(p, index=False)
    return df


def new_figure(nrows: int = 1, ncols: int = 1, width: float = 5.5, height: float = 5.0, **kw):
    """A pyplot-free ``Figure`` and its axes (``Figure.subplots``), for drawing without a GUI backend."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), dpi=kw.pop("dpi", 100), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=kw.pop("squeeze", True), **kw)
    return fig, axes


def _fmt_p(name: str, p) -> str:
    if p is None or not np.isfinite(p):
        return f"{name} = NA"
    return f"{name} < 0.001" if p < 0.001 else f"{name} = {p:.3f}"


def plot_roc(ax, curves: Mapping[str, tuple], *, n_bootstrap: int = 500, groups: Mapping[str, object] | None = None,
             conf_level: float = 0.95, seed: int = 0, title: str | None = "ROC curves", csv_path=None) -> pd.DataFrame:
    """ROC curve per cohort with "label: AUC (95% CI)" (DeLong) in the legend and a bootstrap CI band.

    The curve joins pROC's points with straight segments (the area under it is the Mann-Whitney AUC, ties
    counted 1/2, also for a yes/no rule).
    ``curves`` maps a label (e.g. the cohort) to ``(y, risk)``. The curve is the empirical ROC on pROC's
    threshold grid (:func:`rlnfast.stats.roc_points`); the shaded band is the pointwise percentile band of
    sensitivity at fixed 1 - specificity from ``n_bootstrap`` stratified replicates
    (:func:`rlnfast.stats.roc_confidence_band`, clustered by ``groups[label]`` when given; 0 = no band).
    CSV (long format): label, kind ('curve' or 'band'), fpr, tpr, tpr_low, tpr_high, threshold, auc,
    auc_ci_low, auc_ci_high.
    """
    parts = []
    for i, (label, (y, p)) in enumerate(curves.items()):
        color = _COLORS[i % len(_COLORS)]
        r = delong_auc(y, p, "<", conf_level)
        pts = roc_points(y, p)
        # straight segments between pROC's points: a tie between a positive and a negative node (or a 0/1
        # rule) is a diagonal segment; a step would draw the optimistic corner
        ax.plot(pts.fpr, pts.sensitivity, color=color, lw=1.8,
                label=f"{label}: AUC {r.auc:.3f} ({round(conf_level * 100)}% CI {r.ci_low:.3f}-{r.ci_high:.3f})")
        pts = pts.iloc[::-1].reset_index(drop=True)
        parts.append(pd.DataFrame({"label": label, "kind": "curve", "fpr": pts.fpr, "tpr": pts.sensitivity,
                                   "tpr_low": np.nan, "tpr_high": np.nan, "threshold": pts.threshold,
                                   "auc": r.auc, "auc_ci_low": r.ci_low, "auc_ci_high": r.ci_high}))
        if n_bootstrap:
            g = None if groups is None else groups.get(label)
            band = roc_confidence_band(y, p, n_bootstrap, conf_level, g, seed)
            ax.fill_between(band.fpr, band.tpr_low, band.tpr_high, color=color, alpha=0.18, lw=0)
            parts.append(pd.DataFrame({"label": label, "kind": "band", "fpr": band.fpr, "tpr": band.tpr_median,
                                       "tpr_low": band.tpr_low, "tpr_high": band.tpr_high, "threshold": np.nan,
                                       "auc": r.auc, "auc_ci_low": r.ci_low, "auc_ci_high": r.ci_high}))
    ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1)
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("Sensitivity")
    if title:
        ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return _write(pd.concat(parts, ignore_index=True), csv_path)


def plot_calibration(ax, curves: Mapping[str, tuple], *, n_bins: int = 10, conf_level: float = 0.95,
                     title: str | None = "Calibration", csv_path=None) -> pd.DataFrame:
    """Calibration plot per cohort: quantile-bin points with Wilson CIs and the rms lowess curve.

    ``curves`` maps a label to ``(y, risk)``. Points: observed event rate against mean predicted risk in
    ``n_bins`` quantile bins (:func:`rlnfast.stats.calibration_bins`) with Wilson error bars; line: lowess
    of y on p with rms ``val.prob`` settings (:func:`rlnfast.stats.calibration_smooth`); the dashed
    diagonal is perfect calibration. The legend gives the calibration slope and calibration-in-the-large.
    A proportion lies in [0, 1], so the smooth curve is clipped there (lowess can overshoot near the ends).
    CSV: label, kind ('bin' or 'lowess'), predicted, observed, observed_ci_low, observed_ci_high, n, events.
    """
    parts = []
    for i, (label, (y, p)) in enumerate(curves.items()):
        color = _COLORS[i % len(_COLORS)]
        bins = calibration_bins(y, p, n_bins, conf_level)
        smooth = calibration_smooth(y, p)
        vp = val_prob(y, p)
        citl = calibration_in_the_large(y, p)
        ax.errorbar(bins.mean_predicted, bins.observed,
                    yerr=[np.clip(bins.observed - bins.observed_ci_low, 0, None),
                          np.clip(bins.observed_ci_high - bins.observed, 0, None)],
                    fmt="o", ms=4, color=color, capsize=2, lw=1,
                    label=f"{label}: slope {vp['Slope']:.2f}, CITL {citl:.2f}")
        smooth = smooth.assign(observed=np.clip(smooth.observed.to_numpy(float), 0.0, 1.0))
        ax.plot(smooth.predicted, smooth.observed, color=color, lw=1.5)
        parts.append(pd.DataFrame({"label": label, "kind": "bin", "predicted": bins.mean_predicted,
                                   "observed": bins.observed, "observed_ci_low": bins.observed_ci_low,
                                   "observed_ci_high": bins.observed_ci_high, "n": bins.n, "events": bins.events}))
        parts.append(pd.DataFrame({"label": label, "kind": "lowess", "predicted": smooth.predicted,
                                   "observed": smooth.observed, "observed_ci_low": np.nan,
                                   "observed_ci_high": np.nan, "n": np.nan, "events": np.nan}))
    ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1, label="ideal")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("Predicted probability")
    ax.set_ylabel("Observed proportion")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    return _write(pd.concat(parts, ignore_index=True), csv_path)


def plot_decision_curve(ax, curves: Mapping[str, pd.DataFrame], *, xlim: Sequence[float] = (0.10, 0.70),
                        title: str | None = "Decision curve", csv_path=None) -> pd.DataFrame:
    """Net benefit against threshold probability: the model per cohort, treat-all per cohort, treat-none.

    ``curves`` maps a label to a table from :func:`rlnfast.stats.decision_curve`. Only thresholds inside
    ``xlim`` (default 10-70 %, the study's reported range) are drawn and written. CSV: label, threshold,
    net_benefit_model, net_benefit_all, net_benefit_none.
    """
    parts = []
    lo, hi = float(xlim[0]), float(xlim[1])
    ymax = 0.0
    for i, (label, dc) in enumerate(curves.items()):
        color = _COLORS[i % len(_COLORS)]
        d = dc[(dc.threshold >= lo - 1e-12) & (dc.threshold <= hi + 1e-12)]
        ax.plot(d.threshold, d.net_benefit_model, color=color, lw=1.8, label=f"model ({label})")
        ax.plot(d.threshold, d.net_benefit_all, color=color, lw=1, ls=":", label=f"treat all ({label})")
        ymax = max(ymax, float(np.nanmax(d[["net_benefit_model", "net_benefit_all"]].to_numpy())) if len(d) else 0)
        parts.append(pd.DataFrame({"label": label, "threshold": d.threshold, "net_benefit_model": d.net_benefit_model,
                                   "net_benefit_all": d.net_benefit_all, "net_benefit_none": d.net_benefit_none}))
    ax.axhline(0.0, color="k", lw=1, label="treat none")
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.05 * max(ymax, 0.1), max(ymax, 0.1) * 1.1)
    ax.set_xlabel("Threshold probability")
    ax.set_ylabel("Net benefit")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    return _write(pd.concat(parts, ignore_index=True), csv_path)


def plot_decision_curves(ax, curves: Mapping[str, pd.DataFrame], *, xlim: Sequence[float] = (0.10, 0.70),
                         title: str | None = "Decision curves", csv_path=None) -> pd.DataFrame:
    """Net benefit of several models on the same nodes (one cohort), with treat-all and treat-none.

    ``curves`` maps a model name to its :func:`rlnfast.stats.decision_curve` table on the same cohort;
    treat-all is drawn once (from the first table: it depends on the prevalence only). CSV: label,
    threshold, net_benefit_model, net_benefit_all, net_benefit_none.
    """
    parts = []
    lo, hi = float(xlim[0]), float(xlim[1])
    ymax = 0.0
    first = None
    for i, (label, dc) in enumerate(curves.items()):
        d = dc[(dc.threshold >= lo - 1e-12) & (dc.threshold <= hi + 1e-12)]
        first = d if first is None else first
        ax.plot(d.threshold, d.net_benefit_model, color=_COLORS[i % len(_COLORS)], lw=1.8, label=label)
        ymax = max(ymax, float(np.nanmax(d.net_benefit_model.to_numpy())) if len(d) else 0.0)
        parts.append(pd.DataFrame({"label": label, "threshold": d.threshold, "net_benefit_model": d.net_benefit_model,
                                   "net_benefit_all": d.net_benefit_all, "net_benefit_none": d.net_benefit_none}))
    if first is not None and len(first):
        ax.plot(first.threshold, first.net_benefit_all, color="0.4", lw=1, ls=":", label="treat all")
        ymax = max(ymax, float(np.nanmax(first.net_benefit_all.to_numpy())))
    ax.axhline(0.0, color="k", lw=1, label="treat none")
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.05 * max(ymax, 0.1), max(ymax, 0.1) * 1.1)
    ax.set_xlabel("Threshold probability")
    ax.set_ylabel("Net benefit")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7)
    return _write(pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(), csv_path)


def plot_feature(ax, values, outcome, *, feature: str, p: float | None = None, q: float | None = None,
                 kind: str = "box", labels: Sequence[str] = ("benign (0)", "metastatic (1)"),
                 csv_path=None) -> pd.DataFrame:
    """Distribution of one feature by outcome class as a box or violin plot, titled with p and q.

    The y axis carries the feature's unit (:func:`rlnfast.stats.labels.feature_unit`: HU, per mille, bits,
    mm, dimensionless ...; 'value' when unknown). Missing values are left out (their count is in the CSV). ``p`` and ``q`` are shown as given (e.g.
    Mann-Whitney p and its Benjamini-Hochberg q from :func:`rlnfast.stats.screen_features`). CSV: feature,
    class, n, n_missing, min, q1, median, q3, max, mean.
    """
    if kind not in ("box", "violin"):
        raise ValueError(f"kind must be 'box' or 'violin'; got {kind!r}")
    x = np.asarray(values, dtype=float)
    y = check_binary(outcome)
    groups = [x[(y == c) & np.isfinite(x)] for c in (0, 1)]
    if all(g.size for g in groups):
        if kind == "box":
            ax.boxplot(groups, showfliers=True, widths=0.6)
        else:
            ax.violinplot([g for g in groups], showmedians=True)
        ax.set_xticks([1, 2], list(labels))
    title = feature if len(feature) <= 40 else feature[:37] + "..."
    ax.set_title(f"{title}\n{_fmt_p('p', p)}, {_fmt_p('q', q)}", fontsize=9)
    label = feature_axis_label(feature)
    ax.set_ylabel(label[len(feature):].strip(" []") or "value", fontsize=8)
    ax.tick_params(labelsize=8)
    rows = []
    for c, g in zip((0, 1), groups):
        q1, med, q3 = np.percentile(g, [25, 50, 75]) if g.size else (np.nan,) * 3
        rows.append({"feature": feature, "class": c, "n": int(g.size),
                     "n_missing": int(np.sum((y == c) & ~np.isfinite(x))),
                     "min": float(g.min()) if g.size else np.nan, "q1": q1, "median": med, "q3": q3,
                     "max": float(g.max()) if g.size else np.nan, "mean": float(g.mean()) if g.size else np.nan})
    return _write(pd.DataFrame(rows), csv_path)


def plot_features(axes, data: pd.DataFrame, features: Sequence[str], outcome: str, screening: pd.DataFrame | None = None,
                  *, kind: str = "box", csv_path=None) -> pd.DataFrame:
    """One :func:`plot_feature` panel per feature on a sequence of axes (extra axes are hidden).

    p and q come from ``screening`` (columns mwu_p, mwu_q) when given. CSV: all panels' rows together.
    """
    axes = list(np.ravel(axes))
    if len(axes) < len(features):
        raise ValueError(f"plot_features got {len(axes)} axes for {len(features)} features; expected at least one each")
    scr = screening.set_index("feature") if screening is not None else None
    parts = []
    for ax, f in zip(axes, features):
        p = q = None
        if scr is not None and f in scr.index:
            p, q = scr.at[f, "mwu_p"], scr.at[f, "mwu_q"]
        parts.append(plot_feature(ax, data[f].to_numpy(dtype=float), data[outcome].to_numpy(), feature=f, p=p, q=q,
                                  kind=kind))
    for ax in axes[len(features):]:
        ax.set_visible(False)
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return _write(out, csv_path)


def plot_lasso_path(ax, lasso: LassoResult, *, title: str | None = "LASSO path", csv_path=None) -> pd.DataFrame:
    """Coefficient of every feature against log10(C) of the L1 logistic regression, with the chosen C.

    ``lasso`` is a :class:`rlnfast.stats.LassoResult`; coefficients are refitted on all training rows for
    each C (standardised features); the dotted vertical line marks the C chosen by cross-validated AUC, and
    the cross-validated AUC is drawn on a secondary axis. CSV: the path table (C, log10_C, cv_auc_mean,
    cv_auc_sd, n_nonzero, chosen, one column per feature).
    """
    path = lasso.path
    feats = [c for c in path.columns if c not in ("C", "log10_C", "cv_auc_mean", "cv_auc_sd", "n_nonzero", "chosen")]
    for i, f in enumerate(feats):
        ax.plot(path.log10_C, path[f], lw=1.2, color=_COLORS[i % len(_COLORS)] if len(feats) <= 6 else None,
                label=f if len(feats) <= 10 else None)
    ax.axvline(np.log10(lasso.C), color="k", ls=":", lw=1)
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_xlabel("log10(C)  (C = 1 / penalty strength)")
    ax.set_ylabel("Coefficient (per SD)")
    ax2 = ax.twinx()
    ax2.plot(path.log10_C, path.cv_auc_mean, color="0.4", ls="--", lw=1)
    ax2.set_ylabel("cross-validated AUC", color="0.4")
    if title:
        ax.set_title(f"{title} ({lasso.cv})", fontsize=9)
    if len(feats) <= 10:
        ax.legend(fontsize=7, loc="upper left")
    return _write(path.copy(), csv_path)
