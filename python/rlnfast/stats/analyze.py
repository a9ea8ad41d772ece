"""The study's statistics on a node-level feature table, in one call: :func:`analyze`.

The input is a feature table with one row per lymph node, an outcome column (1 = metastatic, 0 = benign),
a cohort column (training / validation) and, optionally, a patient column (several nodes per patient).
:func:`analyze` runs screening and selection (:mod:`.selection`), the classifier (:mod:`.model`), the
Youden threshold and discrimination (:mod:`.roc`, :mod:`.bootstrap`), calibration (:mod:`.calibration`)
and decision curves (:mod:`.decision`), and returns an :class:`AnalysisResult`;
:func:`rlnfast.stats.report.write_report` turns it into CSV tables, PNG figures and a self-contained HTML
page (imported only when ``out_dir`` is given).
"""
from __future__ import annotations

import platform
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .bootstrap import bootstrap_auc
from .calibration import calibration_ci, calibration_summary
from .checks import _scores, check_binary
from .clustered import clustered_proportion_ci, obuchowski_auc
from .compare import (DEFAULT_FEATURE_SETS, SIZE_COLUMN, SIZE_RULE_MM, ModelResult, build_model, feature_table,
                      fit_candidates, match_features, paired_tests, size_rule)
from .decision import DEFAULT_DCA_REPORT_RANGE, decision_curve
from .model import model_table
from .roc import YoudenResult, delong_auc, delong_paired_test, delong_unpaired_test, threshold_metrics
from .selection import Selection

__all__ = ["AnalysisResult", "IDENTIFIER_COLUMNS", "cohort_metrics", "software_versions", "validate_table",
           "default_features", "analyze"]


# --------------------------------------------------------------------------------- cohort measures

def cohort_metrics(y, p, threshold: float, *, groups=None, n_bootstrap: int = 0, seed=0,
                   conf_level: float = 0.95) -> pd.DataFrame:
    """All discrimination measures of one cohort at a frozen threshold.

    Rows: AUC with DeLong CI (:func:`delong_auc`, direction '<'); with ``groups`` (patient ids) also the AUC
    with Obuchowski's patient-clustered CI (:func:`obuchowski_auc`); when ``n_bootstrap`` > 0 the AUC
    with stratified percentile bootstrap CI (:func:`bootstrap_auc`, patient-clustered when ``groups``);
    sensitivity, specificity, PPV, NPV, accuracy at ``threshold`` with Wilson CIs
    (:func:`threshold_metrics`) and, with ``groups``, sensitivity and specificity with cluster-adjusted
    Wilson CIs (:func:`clustered_proportion_ci`); Brier score (no CI). Columns measure, estimate, ci_low,
    ci_high, count, total, method, clustering ('node-level' = nodes treated as independent, or
    'patient-clustered').
    """
    yy, pp = check_binary(y), _scores(p, "predicted risk")
    node = "node-level"
    r = delong_auc(yy, pp, "<", conf_level)
    rows = [{"measure": "AUC", "estimate": r.auc, "ci_low": r.ci_low, "ci_high": r.ci_high,
             "count": r.n_pos, "total": r.n_pos + r.n_neg, "method": "DeLong", "clustering": node}]
    if groups is not None:
        o = obuchowski_auc(yy, pp, groups, "<", conf_level)
        rows.append({"measure": "AUC", "estimate": o.auc, "ci_low": o.ci_low, "ci_high": o.ci_high,
                     "count": r.n_pos, "total": r.n_pos + r.n_neg, "method": "Obuchowski",
                     "clustering": "patient-clustered"})
    if n_bootstrap:
        b = bootstrap_auc(yy, pp, n_bootstrap, conf_level, groups, seed)
        rows.append({"measure": "AUC", "estimate": b.auc, "ci_low": b.ci_low, "ci_high": b.ci_high,
                     "count": r.n_pos, "total": r.n_pos + r.n_neg,
                     "method": f"bootstrap ({n_bootstrap}, stratified{', patient-clustered' if groups is not None else ''}, percentile)",
                     "clustering": "patient-clustered" if groups is not None else node})
    t = threshold_metrics(yy, pp, threshold, conf_level)
    t["clustering"] = node
    rows.extend(t.to_dict("records"))
    if groups is not None:
        g = np.asarray(groups, dtype=object)
        call = (pp >= threshold).astype(int)
        for name, keep, hit in (("sensitivity", yy == 1, call), ("specificity", yy == 0, 1 - call)):
            est, lo, hi, deff = clustered_proportion_ci(hit[keep], g[keep], conf_level)
            rows.append({"measure": name, "estimate": est, "ci_low": lo, "ci_high": hi,
                         "count": int(hit[keep].sum()), "total": int(keep.sum()),
                         "method": f"Wilson, Rao-Scott design effect {deff:.2f}", "clustering": "patient-clustered"})
    rows.append({"measure": "Brier", "estimate": float(np.mean((pp - yy) ** 2)), "ci_low": np.nan,
                 "ci_high": np.nan, "count": np.nan, "total": yy.size, "method": "mean squared error",
                 "clustering": node})
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
    """Everything :func:`analyze` computed; :func:`rlnfast.stats.report.write_report` renders it."""

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
    models: dict = field(default_factory=dict)
    model_comparison: pd.DataFrame = field(default_factory=pd.DataFrame)
    model_tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    skipped_models: list = field(default_factory=list)
    feature_table: pd.DataFrame = field(default_factory=pd.DataFrame)
    headline: dict = field(default_factory=dict)

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
            out_dir=None, title: str = "rlnfast analysis", extra_sections=None,
            feature_sets: Mapping[str, Sequence[str]] | None = None, model_set: str | None = None,
            size_rule_mm: float | None = SIZE_RULE_MM, size_column: str = SIZE_COLUMN,
            outcome_label: str = "lymph-node metastasis") -> AnalysisResult:
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
    5. the study's comparison (:mod:`.compare`): for each named feature set (``feature_sets``: name ->
       glob patterns over the table's predictor columns, ``!`` excludes; default
       :data:`DEFAULT_FEATURE_SETS`: the DEM model, conventional radiomics, node size; ``{}`` = none) a
       model built by the very procedure of steps 2-3 (:func:`fit_candidates`), and the size rule
       (``size_column`` >= ``size_rule_mm``, RECIST 1.1; None = off); per model and cohort AUC with CI
       (patient-clustered when ``patient``), sensitivity/specificity at its frozen threshold, calibration
       with CIs, net-benefit range; paired DeLong tests between every pair (:func:`paired_tests`). A set
       whose columns are absent is skipped with a note (``skipped_models``), never an error.
    ``model_set`` names the set that is the headline model (its columns are the candidates; ``features``
    must then be None); otherwise the headline model ("model") is built from ``features`` and compared
    with the sets. ``outcome_label`` words the outcome in the report's summary.
    With ``out_dir``, :func:`rlnfast.stats.report.write_report` writes CSV tables, PNG figures and
    report.html there (``extra_sections``: (title, DataFrame) pairs appended to the report).
    """
    validate_table(df, outcome, cohort, patient, training_label, validation_label)
    roles = {outcome, cohort} | ({patient} if patient else set())
    sets = dict(DEFAULT_FEATURE_SETS if feature_sets is None else feature_sets)
    for name, pats in sets.items():
        if isinstance(pats, str) or not all(isinstance(p, str) for p in pats) or not pats:
            raise ValueError(f"feature set {name!r} must be a sequence of glob patterns; got {pats!r}")
    set_columns = default_features(df, exclude=set(exclude) | roles)
    if model_set is not None:
        if features is not None:
            raise ValueError("give either features or model_set, not both")
        if model_set not in sets:
            raise ValueError(f"model_set {model_set!r} is not one of the feature sets {list(sets)}")
        features = match_features(set_columns, sets[model_set])
        if not features:
            raise ValueError(f"model_set {model_set!r}: no column matches {', '.join(sets[model_set])}")
    if features is None:
        features = set_columns
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
    train_mask = (data["_cohort"] == training_label).to_numpy()
    train = data[train_mask]
    cohort_labels = [training_label, validation_label]

    tgroups = train[patient].to_numpy() if patient else None
    fit_kw = dict(selection=dict(p_max=p_max, p_column=p_column, q_max=q_max, auc_min=auc_min, corr_max=corr_max,
                                 lasso=lasso, max_features=max_features),
                  estimator=estimator, tie=tie, conf_level=conf_level, seed=seed)
    screening, selection, model, risk, thr = fit_candidates(data, train_mask, features, outcome, groups=tgroups,
                                                            **fit_kw)
    sel = selection.selected

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

    model_name = model_set or "model"
    models, skipped = {}, []
    if model_set is None:
        models[model_name] = build_model(model_name, ("all candidate features",), data, cohort_labels, outcome,
                                         columns=features, patient=patient, fit=fit_kw, conf_level=conf_level,
                                         dca_thresholds=dca_thresholds, fitted=(selection, model, risk, thr),
                                         candidates=features, nb_within=dca_report_range)
    for name, pats in sets.items():
        try:
            fitted = (selection, model, risk, thr) if name == model_set else None
            models[name] = build_model(name, tuple(pats), data, cohort_labels, outcome, columns=set_columns,
                                       patient=patient, fit=fit_kw, conf_level=conf_level,
                                       dca_thresholds=dca_thresholds, fitted=fitted, nb_within=dca_report_range)
        except LookupError as exc:
            skipped.append((name, f"skipped: {exc} in the feature table"))
        except ValueError as exc:
            skipped.append((name, f"skipped: {exc}"))
    if size_rule_mm is not None:
        try:
            r = size_rule(data, cohort_labels, outcome, column=size_column, cutoff_mm=size_rule_mm, patient=patient,
                          conf_level=conf_level, dca_thresholds=dca_thresholds, nb_within=dca_report_range)
            models[r.name] = r
        except LookupError:
            skipped.append((f"{size_rule_mm:g} mm rule", f"skipped: column {size_column} absent from the feature "
                            "table (extract the size feature class to compare with node size)"))
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
        "model_name": model_name, "feature_sets": {k: list(v) for k, v in sets.items()},
        "size_rule": None if size_rule_mm is None else f"{size_column} >= {size_rule_mm:g} mm",
        "outcome_label": outcome_label, "size_column": size_column,
    }
    if model_set is not None:  # the headline model first
        models = {model_set: models[model_set], **{k: v for k, v in models.items() if k != model_set}}
    comparison = pd.concat([m.metrics for m in models.values()], ignore_index=True) if models else pd.DataFrame()
    tests = paired_tests(list(models.values()), data, cohort_labels, outcome, patient, conf_level)
    result = AnalysisResult(settings=settings, versions=software_versions(), cohorts=pd.DataFrame(cohorts_rows),
                            screening=screening, selection=selection, model=model,
                            model_table=model_table(model, sel), threshold=thr, predictions=pred,
                            performance=pd.concat(perf, ignore_index=True), calibration=calib,
                            decision_curves=dcs, comparisons=pd.DataFrame(comps), data=data,
                            notes=list(selection.notes), models=models, model_comparison=comparison,
                            model_tests=tests, skipped_models=skipped,
                            feature_table=feature_table(data, sel, screening, cohort_labels, outcome, conf_level))
    if out_dir is not None:
        from .report import write_report

        write_report(result, out_dir, title=title, extra_sections=extra_sections)
    return result
