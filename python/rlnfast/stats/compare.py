"""The study's comparison: models built from named feature sets, and node size, on the same nodes.

A feature set is a name and glob patterns over the columns of the feature table (``!`` before a pattern
excludes what it matches). Each set goes through exactly the procedure of the headline model
(:func:`fit_candidates`: screening, selection and the classifier on the training cohort only, the Youden
threshold frozen for validation). The size criterion is also compared as the clinical rule it is: a node is
called positive when its short-axis diameter is >= 10 mm (RECIST 1.1), with no fitting at all. For every
model: AUC with CI (patient-clustered when a patient column is given), sensitivity and specificity at the
frozen threshold, calibration (CITL and slope with CIs), the threshold range where its net benefit beats
treat-all and treat-none; between every pair: paired DeLong tests on the nodes both score (pROC
``roc.test(paired=TRUE)``), and Obuchowski's clustered version beside it.
"""
from __future__ import annotations

import fnmatch
import itertools
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _sps

from .calibration import calibration_ci
from .clustered import clustered_proportion_ci, obuchowski_auc, obuchowski_paired_test
from .decision import net_benefit_table
from .model import fit_model, predict_risk
from .roc import delong_auc, delong_paired_test, threshold_metrics, youden_threshold
from .selection import Selection, screen_features, select_features

__all__ = ["DEFAULT_FEATURE_SETS", "SIZE_COLUMN", "SIZE_RULE_MM", "ModelResult", "parse_feature_set",
           "match_features", "fit_candidates", "model_metrics", "benefit_ranges", "format_ranges",
           "paired_tests", "build_model", "size_rule", "feature_table"]

#: the study's comparison: the DEM model (E and DEM image types and the fractal class), conventional
#: radiomics (the CT image: first-order, shape and texture classes, without fractal and size), node size
DEFAULT_FEATURE_SETS = {
    "DEM model": ("E_original_*", "DEM_original_*", "*_fractal_*"),
    "conventional radiomics": ("original_*", "!*_fractal_*", "!original_size_*"),
    "node size (short axis)": ("original_size_ShortAxisDiameter",),
}
#: the short-axis diameter column of the ``size`` feature class
SIZE_COLUMN = "original_size_ShortAxisDiameter"
#: RECIST 1.1: a lymph node is pathological from a short axis of 10 mm
SIZE_RULE_MM = 10.0


def parse_feature_set(text: str) -> tuple[str, tuple]:
    """``'NAME=GLOB[,GLOB...]'`` -> (name, patterns); ``!GLOB`` excludes. Raises ``ValueError`` if malformed."""
    name, sep, rest = str(text).partition("=")
    pats = tuple(p.strip() for p in rest.split(",") if p.strip())
    if not sep or not name.strip() or not pats:
        raise ValueError(f"feature set {text!r} must look like NAME=GLOB[,GLOB...] (e.g. "
                         "'E only=E_original_*'; '!GLOB' excludes)")
    return name.strip(), pats


def match_features(columns: Sequence[str], patterns: Sequence[str]) -> list:
    """Columns (in table order) matching any pattern without a ``!`` and none of the ``!`` patterns
    (shell-style globs, case-sensitive; a pattern without wildcards is a column name)."""
    inc = [p for p in patterns if not p.startswith("!")]
    exc = [p[1:] for p in patterns if p.startswith("!")]
    return [c for c in map(str, columns) if any(fnmatch.fnmatchcase(c, p) for p in inc)
            and not any(fnmatch.fnmatchcase(c, p) for p in exc)]


def fit_candidates(data: pd.DataFrame, train_mask: np.ndarray, candidates: Sequence[str], outcome: str, *,
                   groups=None, selection: Mapping[str, Any], estimator=None, tie: str = "sensitivity",
                   conf_level: float = 0.95, seed: int = 0):
    """The one model-building procedure, on the training rows only: :func:`screen_features`,
    :func:`select_features` (``selection``: its keyword settings), :func:`fit_model`, risks for every row
    and the Youden threshold on the training risks. Returns (screening, Selection, model, risk, YoudenResult).
    ``groups``: patient ids of the training rows (LASSO folds)."""
    train = data[train_mask]
    screening = screen_features(train, list(candidates), outcome, conf_level)
    sel = select_features(screening, train, outcome, groups=groups, seed=seed, **selection)
    model = fit_model(train, sel.selected, outcome, estimator, seed)
    risk = predict_risk(model, data, sel.selected)
    thr = youden_threshold(train[outcome].to_numpy(), risk[train_mask], tie)
    return screening, sel, model, risk, thr


def benefit_ranges(dc: pd.DataFrame, within: Sequence[float] | None = None) -> list:
    """Threshold ranges (lo, hi) of a decision curve where the model's net benefit exceeds both treat-all
    and treat-none (consecutive grid points merged), optionally only thresholds ``within`` (lo, hi)."""
    if within is not None:
        dc = dc[(dc["threshold"] >= within[0] - 1e-12) & (dc["threshold"] <= within[1] + 1e-12)]
    t = dc["threshold"].to_numpy(float)
    win = dc["net_benefit_model"].to_numpy(float) > np.maximum(dc["net_benefit_all"].to_numpy(float), 0.0)
    out, start = [], None
    for i, w in enumerate(win):
        if w and start is None:
            start = i
        if start is not None and (not w or i == len(win) - 1):
            end = i if w else i - 1
            out.append((float(t[start]), float(t[end])))
            start = None
    return out


def format_ranges(ranges) -> str:
    """``[(0.12, 0.68)]`` -> ``'12%-68%'``; several ranges joined by commas; 'none' when empty."""
    if not ranges:
        return "none"
    return ", ".join(f"{lo * 100:.0f}%" if lo == hi else f"{lo * 100:.0f}%-{hi * 100:.0f}%" for lo, hi in ranges)


@dataclass
class ModelResult:
    """One compared model: what it was built from, its risks for every node, and its measures per cohort."""

    name: str
    kind: str
    patterns: tuple
    candidates: list
    selected: list
    risk: np.ndarray = field(repr=False)
    threshold: float
    threshold_rule: str
    metrics: pd.DataFrame
    calibration: dict
    decision_curves: dict = field(repr=False)
    notes: list = field(default_factory=list)
    selection: Selection | None = field(default=None, repr=False)
    model: Any = field(default=None, repr=False)

    def as_dict(self) -> dict:
        """Name, kind, patterns, candidates, selected features, threshold and notes."""
        return {"name": self.name, "kind": self.kind, "patterns": list(self.patterns),
                "candidates": list(self.candidates), "selected": list(self.selected),
                "threshold": self.threshold, "threshold_rule": self.threshold_rule, "notes": list(self.notes)}


def model_metrics(y, score, threshold: float, *, groups=None, conf_level: float = 0.95,
                  probability: bool = True) -> dict:
    """One model in one cohort: AUC, sensitivity, specificity, calibration and net-benefit range.

    AUC with DeLong CI (node-level) and, with ``groups``, Obuchowski's patient-clustered CI; the headline
    columns ``auc_ci_low``/``auc_ci_high`` are the clustered ones when ``groups`` is given (``ci`` says
    which). Sensitivity/specificity at ``threshold`` (called positive when score >= threshold) with Wilson
    CIs, cluster-adjusted (:func:`rlnfast.stats.clustered_proportion_ci`) with ``groups``. When
    ``probability``: calibration (:func:`rlnfast.stats.calibration_ci`) and the decision-curve ranges
    where net benefit beats treat-all and treat-none.
    """
    y = np.asarray(y, dtype=int)
    s = np.asarray(score, dtype=float)
    d = delong_auc(y, s, "<", conf_level)
    row = {"nodes": int(y.size), "events": int(y.sum()),
           "patients": int(pd.unique(np.asarray(groups, dtype=object)).size) if groups is not None else np.nan,
           "auc": d.auc, "auc_delong_ci_low": d.ci_low, "auc_delong_ci_high": d.ci_high}
    call = (s >= threshold).astype(int)
    tm = threshold_metrics(y, s, threshold, conf_level).set_index("measure")
    if groups is not None:
        g = np.asarray(groups, dtype=object)
        o = obuchowski_auc(y, s, g, "<", conf_level)
        row.update(auc_ci_low=o.ci_low, auc_ci_high=o.ci_high,
                   ci="patient-clustered (AUC: Obuchowski; sensitivity/specificity: Wilson with Rao-Scott "
                      "design effect)")
        for name, cls, keep in (("sensitivity", 1, y == 1), ("specificity", 0, y == 0)):
            hit = call[keep] if cls == 1 else 1 - call[keep]
            p, lo, hi, _ = clustered_proportion_ci(hit, g[keep], conf_level)
            row.update({name: p, f"{name}_ci_low": lo, f"{name}_ci_high": hi})
    else:
        row.update(auc_ci_low=d.ci_low, auc_ci_high=d.ci_high, ci="node-level (AUC: DeLong; sensitivity/"
                   "specificity: Wilson)")
        for name in ("sensitivity", "specificity"):
            row.update({name: tm.at[name, "estimate"], f"{name}_ci_low": tm.at[name, "ci_low"],
                        f"{name}_ci_high": tm.at[name, "ci_high"]})
    if probability:
        try:
            c = calibration_ci(y, s, conf_level)
            row.update({k: c[k] for k in ("citl", "citl_ci_low", "citl_ci_high", "slope", "slope_ci_low",
                                          "slope_ci_high")}, calibration_holds=c["holds"])
        except Exception as exc:  # noqa: BLE001 - a degenerate cohort gets a reason, not a crash
            row["calibration_note"] = f"calibration not estimable: {exc}"
    return row


def build_model(name: str, patterns: Sequence[str], data: pd.DataFrame, cohort_labels: Sequence[str],
                outcome: str, *, columns: Sequence[str], patient: str | None, fit: dict, conf_level: float,
                dca_thresholds=None, fitted=None, candidates=None, nb_within=None) -> ModelResult:
    """Build (or, with ``fitted`` = (selection, model, risk, threshold), reuse) the model of one feature set
    and measure it per cohort. ``columns``: the table's predictor columns the patterns are matched against;
    ``fit``: keyword arguments of :func:`fit_candidates`; ``candidates`` overrides the matching.
    Raises ``LookupError`` when no column matches."""
    cands = match_features(columns, patterns) if candidates is None else list(candidates)
    if not cands:
        raise LookupError(f"no column matches {', '.join(patterns)}")
    coh = data["_cohort"].to_numpy()
    train_mask = coh == cohort_labels[0]
    if fitted is None:
        tg = data.loc[train_mask, patient].to_numpy() if patient else None
        _, sel, model, risk, thr = fit_candidates(data, train_mask, cands, outcome, groups=tg, **fit)
    else:
        sel, model, risk, thr = fitted
    mres = _measure(name, "model", tuple(patterns), cands, list(sel.selected), risk, thr.threshold,
                    f"Youden on {cohort_labels[0]}, frozen", data, cohort_labels, outcome, patient, conf_level,
                    dca_thresholds, probability=True, nb_within=nb_within)
    mres.selection, mres.model, mres.notes = sel, model, list(sel.notes)
    return mres


def size_rule(data: pd.DataFrame, cohort_labels: Sequence[str], outcome: str, *, column: str = SIZE_COLUMN,
              cutoff_mm: float = SIZE_RULE_MM, patient: str | None = None, conf_level: float = 0.95,
              dca_thresholds=None, nb_within=None) -> ModelResult:
    """The clinical size criterion: positive when ``column`` >= ``cutoff_mm`` (nothing fitted). Its score is
    0/1, so its AUC is (sensitivity + specificity) / 2; its decision curve is that of treating the nodes the
    rule calls positive at every threshold probability; calibration does not apply (no risk). Nodes without
    a size are left out of its measures (counted in the notes)."""
    if column not in data.columns:
        raise LookupError(f"column {column} absent")
    x = pd.to_numeric(data[column], errors="coerce").to_numpy(float)
    score = np.where(np.isfinite(x), (x >= cutoff_mm).astype(float), np.nan)
    m = _measure(f"{cutoff_mm:g} mm rule", "rule", (f"{column} >= {cutoff_mm:g} mm",), [column], [column], score,
                 0.5, f"short axis >= {cutoff_mm:g} mm (RECIST 1.1), fixed", data, cohort_labels, outcome,
                 patient, conf_level, dca_thresholds, probability=False, nb_within=nb_within)
    nmiss = int((~np.isfinite(x)).sum())
    if nmiss:
        m.notes.append(f"{nmiss} node(s) without a {column} value are left out of the rule's measures")
    return m


def _measure(name, kind, patterns, cands, selected, risk, threshold, rule, data, cohort_labels, outcome, patient,
             conf_level, dca_thresholds, probability, nb_within=None) -> ModelResult:
    coh = data["_cohort"].to_numpy()
    rows, calib, dcs = [], {}, {}
    for lab in cohort_labels:
        m = (coh == lab) & np.isfinite(risk)
        y = data.loc[m, outcome].to_numpy(int)
        g = data.loc[m, patient].to_numpy() if patient else None
        r = {"model": name, "cohort": lab}
        if y.size == 0 or y.min() == y.max():
            r["note"] = "both outcome classes needed"
            rows.append(r)
            continue
        r.update(model_metrics(y, risk[m], threshold, groups=g, conf_level=conf_level, probability=probability))
        dcs[lab] = net_benefit_table(y, risk[m], dca_thresholds)
        r["net_benefit_range"] = format_ranges(benefit_ranges(dcs[lab], nb_within))
        calib[lab] = {k: r.get(k) for k in ("citl", "citl_ci_low", "citl_ci_high", "slope", "slope_ci_low",
                                             "slope_ci_high", "calibration_holds")} if probability else None
        rows.append(r)
    return ModelResult(name, kind, tuple(patterns), list(cands), list(selected), np.asarray(risk, float),
                       float(threshold), rule, pd.DataFrame(rows), calib, dcs)


def paired_tests(models: Sequence[ModelResult], data: pd.DataFrame, cohort_labels: Sequence[str], outcome: str,
                 patient: str | None = None, conf_level: float = 0.95) -> pd.DataFrame:
    """Paired DeLong test of every pair of models in every cohort, on the nodes both score.

    DeLong (pROC ``roc.test(ra, rb, method='delong', paired=TRUE)``: z, p, CI of the difference; nodes
    treated as independent) and, with ``patient``, Obuchowski's patient-clustered p beside it.
    """
    coh = data["_cohort"].to_numpy()
    rows = []
    for lab in cohort_labels:
        for a, b in itertools.combinations(models, 2):
            m = (coh == lab) & np.isfinite(a.risk) & np.isfinite(b.risk)
            y = data.loc[m, outcome].to_numpy(int)
            if y.size < 3 or y.min() == y.max():
                continue
            r = delong_paired_test(y, a.risk[m], b.risk[m], conf_level=conf_level)
            row = {"cohort": lab, "a": a.name, "b": b.name, "n": int(m.sum()), "auc_a": r.auc_a, "auc_b": r.auc_b,
                   "difference": r.difference, "ci_low": r.ci_low, "ci_high": r.ci_high, "z": r.z, "p": r.p}
            if patient:
                g = data.loc[m, patient].to_numpy()
                o = obuchowski_paired_test(y, a.risk[m], b.risk[m], g, conf_level=conf_level)
                row.update(n_patients=o.n_clusters, p_clustered=o.p, ci_low_clustered=o.ci_low,
                           ci_high_clustered=o.ci_high)
            rows.append(row)
    return pd.DataFrame(rows)


def _mwu_p(x1, x0) -> float:
    """Two-sided Mann-Whitney p of two samples (NaN when one is empty)."""
    if len(x1) == 0 or len(x0) == 0:
        return float("nan")
    return float(_sps.mannwhitneyu(x1, x0, alternative="two-sided").pvalue)


def feature_table(data: pd.DataFrame, features: Sequence[str], screening: pd.DataFrame,
                  cohort_labels: Sequence[str], outcome: str, conf_level: float = 0.95) -> pd.DataFrame:
    """The study's table: each feature of the model alone, per cohort.

    Per feature and cohort, on the nodes with a value: AUC with DeLong CI (node-level) oriented by the
    feature's training direction (from ``screening``), sensitivity and specificity at the feature's own
    Youden cut-off chosen on the training cohort and frozen, and the two-sided Mann-Whitney p of
    metastatic vs non-metastatic nodes.
    """
    direction = screening.set_index("feature")["direction"]
    coh = data["_cohort"].to_numpy()
    rows = []
    for f in features:
        x = pd.to_numeric(data[f], errors="coerce").to_numpy(float)
        d = direction.get(f, "<")
        d = d if d in ("<", ">") else "<"
        tm = (coh == cohort_labels[0]) & np.isfinite(x)
        yt = data.loc[tm, outcome].to_numpy(int)
        cut = youden_threshold(yt, x[tm], direction=d).threshold if yt.size and yt.min() != yt.max() else np.nan
        for lab in cohort_labels:
            m = (coh == lab) & np.isfinite(x)
            y = data.loc[m, outcome].to_numpy(int)
            row = {"feature": f, "cohort": lab, "nodes": int(m.sum()),
                   "higher_in": "metastatic" if d == "<" else "non-metastatic", "cutoff": cut}
            if y.size and y.min() != y.max():
                a = delong_auc(y, x[m], d, conf_level)
                t = threshold_metrics(y, x[m], cut, conf_level, direction=d).set_index("measure")
                row.update(auc=a.auc, auc_ci_low=a.ci_low, auc_ci_high=a.ci_high,
                           sensitivity=t.at["sensitivity", "estimate"], specificity=t.at["specificity", "estimate"],
                           p=_mwu_p(x[m][y == 1], x[m][y == 0]))
            rows.append(row)
    return pd.DataFrame(rows)
