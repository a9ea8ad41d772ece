"""The study report: CSV tables, PNG figures and one self-contained HTML page from an analysis result.

:func:`write_report` takes the :class:`rlnfast.stats.AnalysisResult` of :func:`rlnfast.stats.analyze` and
writes, under ``out_dir``:

- ``tables/*.csv``: cohorts, screening, selection, model, threshold, performance, comparisons, calibration
  summary and bins, decision curves (full grid and the reported range), predictions, LASSO path, extras;
- ``figures/*.png`` with the numbers behind each figure in ``figures/*.csv`` (:mod:`rlnfast.stats.plots`);
- ``report.html``: every table and figure (PNG embedded as base64, no external file, script or style),
  the settings, software versions and the TRIPOD items covered. Every cell, header and caption is
  HTML-escaped (``html.escape``), so case identifiers such as ``<script>`` show as text.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import math
import re
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

__all__ = ["write_report", "html_table", "normalise_sections", "summary_sentences", "comparison_table", "TRIPOD_ITEMS"]

#: TRIPOD 2015 items (Collins et al., BMJ 2015) this report addresses, with where it does so
TRIPOD_ITEMS = [
    ("8", "Study size", "Cohorts: nodes, patients, events and non-events per cohort."),
    ("9", "Missing data", "Cohorts: missing values in the model's features; screening: missing per feature; "
                          "default model imputes the training median."),
    ("10a", "Handling of predictors", "Settings and model: standardisation and imputation fitted on training."),
    ("10b", "Model type, predictor selection, internal validation", "Selection: thresholds, correlation "
           "pruning, LASSO with (patient-grouped) cross-validation; model type in the settings."),
    ("10c", "Validation: how predictions were calculated", "Model fitted on training only; coefficients, "
           "imputation and scaling frozen and applied to validation."),
    ("10d", "Measures of performance", "AUC (DeLong, bootstrap), sensitivity, specificity, PPV, NPV (Wilson), "
           "calibration (slope, CITL, Emax/E90/Eavg, Spiegelhalter, Hosmer-Lemeshow), decision curves."),
    ("11", "Risk groups", "Threshold: Youden cut-off chosen on training, frozen for validation."),
    ("13a", "Participants: flow and numbers with the outcome", "Cohorts table."),
    ("14a", "Model development: participants and events", "Cohorts table (training row)."),
    ("14b", "Unadjusted association of each predictor", "Screening table (all features, including those "
            "that could not be screened, with the reason)."),
    ("15a", "Full model", "Model table: intercept, coefficients, odds ratios, imputation and scaling values."),
    ("15b", "How to use the model", "Threshold section: cut-off, tie rule and its sensitivity/specificity."),
    ("16", "Model performance with confidence intervals", "Performance, comparisons, calibration, decision "
           "curve sections, per cohort."),
]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1150px;
color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.82em}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:right;vertical-align:top}
th{background:#f2f2f2}td.t{text-align:left}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
.note{background:#fff8e1;border-left:4px solid #f0c000;padding:.4em .8em}
.summary{background:#eef6ff;border-left:4px solid #1f77b4;padding:.2em 1em;font-size:1.05em}
.scroll{max-height:480px;overflow:auto;display:inline-block;max-width:100%}
code{background:#f4f4f4;padding:0 3px}
"""


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return ""
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        if f != 0 and abs(f) < 1e-3:
            return f"{f:.2e}"
        if f == int(f) and abs(f) < 1e9:
            return str(int(f))
        return f"{f:.4g}" if abs(f) >= 1 else f"{f:.4f}"
    return str(v)


def html_table(df: pd.DataFrame, max_rows: int | None = None, index: bool = False, raw_headers: bool = False) -> str:
    """An HTML ``<table>`` of ``df`` with every header and cell passed through ``html.escape``.

    Headers are shown readable (:func:`rlnfast.stats.labels.readable`: 'Missing values in the model's
    features', not ``missing_values_in_model_features``) unless ``raw_headers``; the CSV files keep the
    machine names. Floats are shown with 4 decimals (or 4 significant digits above 1, scientific below
    0.001), NaN as an empty cell; text cells are left-aligned. ``max_rows`` truncates with a note (the CSV
    has all rows).
    """
    from .labels import readable

    d = df.reset_index() if index else df
    shown = d if max_rows is None or len(d) <= max_rows else d.iloc[:max_rows]
    out = ["<table>", "<thead><tr>"]
    out += [f"<th>{html.escape(str(c) if raw_headers else readable(c))}</th>" for c in shown.columns]
    out.append("</tr></thead><tbody>")
    for row in shown.itertuples(index=False):
        out.append("<tr>")
        for v in row:
            cls = ' class="t"' if isinstance(v, str) else ""
            out.append(f"<td{cls}>{html.escape(_fmt(v))}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    if len(shown) < len(d):
        out.append(f"<p class=\"note\">{len(d) - len(shown)} more rows in the CSV file.</p>")
    return "".join(out)


def normalise_sections(extra_sections) -> list:
    """Extra report sections as a list of (title, DataFrame, note) triples.

    Accepts None, one ``(title, DataFrame)`` or ``(title, DataFrame, note)`` tuple, a list of them, or a
    mapping title -> DataFrame. Raises ``ValueError`` for anything else.
    """
    if extra_sections is None:
        return []
    if isinstance(extra_sections, Mapping):
        items = list(extra_sections.items())
    elif isinstance(extra_sections, tuple) and len(extra_sections) in (2, 3) and isinstance(extra_sections[0], str):
        items = [extra_sections]
    else:
        items = list(extra_sections)
    out = []
    for it in items:
        if not (isinstance(it, tuple) and len(it) in (2, 3) and isinstance(it[0], str)
                and isinstance(it[1], pd.DataFrame)):
            raise ValueError("extra_sections must be (title, DataFrame[, note]) tuples or a {title: DataFrame} "
                             f"mapping; got an item of type {type(it).__name__}")
        out.append((it[0], it[1], it[2] if len(it) == 3 else ""))
    return out


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", s).strip("_").lower() or "section"


def _png(fig, path: Path) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    data = buf.getvalue()
    path.write_bytes(data)
    return base64.b64encode(data).decode("ascii")


def _figure_html(b64: str, caption: str, alt: str) -> str:
    return (f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _settings_table(d: Mapping) -> pd.DataFrame:
    return pd.DataFrame({"setting": list(map(str, d.keys())), "value": [str(v) for v in d.values()]})


def _ci(lo, hi, d: int = 2) -> str:
    return f"{lo:.{d}f} to {hi:.{d}f}" if min(lo, hi) < 0 else f"{lo:.{d}f}-{hi:.{d}f}"


def _p_words(p) -> str:
    if p is None or not np.isfinite(p):
        return "p not available"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _metric_row(result, name: str, cohort: str):
    m = result.models.get(name)
    if m is None or m.metrics.empty:
        return None
    r = m.metrics[m.metrics.cohort == cohort]
    return None if r.empty or "auc" not in r.columns or not np.isfinite(r.iloc[0].get("auc", np.nan)) else r.iloc[0]


def _test_row(result, a: str, b: str, cohort: str):
    t = result.model_tests
    if t is None or t.empty:
        return None
    r = t[(t.cohort == cohort) & (((t.a == a) & (t.b == b)) | ((t.a == b) & (t.b == a)))]
    if r.empty:
        return None
    r = r.iloc[0].copy()
    if r.a != a:  # orient as a - b
        r["difference"], r["ci_low"], r["ci_high"] = -r.difference, -r.ci_high, -r.ci_low
    return r


def _versus(result, head: str, other: str, cohort: str, pct: str) -> str:
    r = _metric_row(result, other, cohort)
    if r is None:
        return ""
    t = _test_row(result, head, other, cohort)
    text = (f"{other}: AUC {r.auc:.2f} ({pct} CI {_ci(r.auc_ci_low, r.auc_ci_high)}), sensitivity "
            f"{r.sensitivity:.2f}, specificity {r.specificity:.2f}")
    if t is not None:
        text += (f"; difference in AUC {t.difference:+.2f} ({pct} CI {_ci(t.ci_low, t.ci_high)}, paired DeLong "
                 f"{_p_words(t.p)}" + (f", patient-clustered {_p_words(t.p_clustered)}" if "p_clustered" in t
                                       and np.isfinite(t.get("p_clustered", np.nan)) else "") + ")")
    return text


def summary_sentences(result) -> list:
    """The plain-language summary at the top of the report, one sentence (or short paragraph) per item:
    what was predicted and in whom, the headline model and its validation AUC with CI (patient-clustered
    when a patient column was given), sensitivity and specificity at the frozen threshold, whether
    calibration holds, the threshold range where net benefit beats treat-all and treat-none, and how the
    model compares with node size and with the other compared models (or why it could not be compared)."""
    s = result.settings
    train, val = s["cohort_labels"]
    conf = s.get("conf_level", 0.95)
    pct = f"{round(conf * 100)}%"
    name = s.get("model_name", "model")
    coh = result.cohorts.set_index("cohort")
    clustered = bool(s.get("patient"))

    def who(lab):
        c = coh.loc[lab]
        pats = f" of {int(c.patients)} patients" if clustered and np.isfinite(c.patients) else ""
        return f"{int(c.nodes)} nodes ({int(c.events)} with the outcome){pats}"

    out = [f"Predicted: {s.get('outcome_label', 'the outcome')} (column {s['outcome']} = 1), for each lymph node "
           f"separately. In whom: {who(val)} in the {val} cohort. The model was built on {who(train)} in the "
           f"{train} cohort only; its features, coefficients and threshold were fixed there before validation."]
    feats = result.features
    out.append(f"The {name} uses {len(feats)} feature{'s' if len(feats) != 1 else ''}: {', '.join(map(str, feats))}.")
    r = _metric_row(result, name, val)
    if r is None:
        out.append(f"No validation measures could be computed for the {name}.")
        return out
    how = ("accounting for several nodes per patient" if clustered else "nodes treated as independent; no patient "
           "column was given")
    out.append(f"Discrimination: validation AUC {r.auc:.2f} ({pct} CI {_ci(r.auc_ci_low, r.auc_ci_high)}, {how}). "
               f"0.5 is chance, 1 is perfect.")
    out.append(f"At the threshold frozen on {train} (predicted risk >= {result.threshold.threshold:.2f}): "
               f"sensitivity {r.sensitivity:.2f} ({pct} CI {_ci(r.sensitivity_ci_low, r.sensitivity_ci_high)}) and "
               f"specificity {r.specificity:.2f} ({pct} CI {_ci(r.specificity_ci_low, r.specificity_ci_high)}): "
               f"of 100 metastatic nodes about {round(r.sensitivity * 100)} are flagged, of 100 non-metastatic "
               f"nodes about {round(r.specificity * 100)} are cleared.")
    if "calibration_holds" in r and isinstance(r.calibration_holds, (bool, np.bool_)):
        detail = (f"calibration-in-the-large {r.citl:.2f} ({pct} CI {_ci(r.citl_ci_low, r.citl_ci_high)}; 0 is ideal), "
                  f"calibration slope {r.slope:.2f} ({pct} CI {_ci(r.slope_ci_low, r.slope_ci_high)}; 1 is ideal)")
        if r.calibration_holds:
            out.append(f"Calibration holds in {val}: the predicted risks agree with the observed rates "
                       f"({detail}; node-level CIs).")
        else:
            why = []
            if not r.citl_ci_low <= 0 <= r.citl_ci_high:
                why.append("predicted risks are on average too " + ("low" if r.citl > 0 else "high"))
            if not r.slope_ci_low <= 1 <= r.slope_ci_high:
                why.append("predicted risks are too extreme (slope below 1)" if r.slope < 1
                           else "predicted risks are too moderate (slope above 1)")
            out.append(f"Calibration does not hold in {val}: {' and '.join(why)} ({detail}; node-level CIs). "
                       "Use the ranking (AUC) with care for absolute risks.")
    lo, hi = s.get("dca_report_range", (0.1, 0.7))
    rng = r.get("net_benefit_range", "none")
    if rng and rng != "none":
        out.append(f"Net benefit (decision curve, {val}): deciding by the model beats both treating every node "
                   f"and treating none for threshold probabilities {rng} (of the {lo * 100:.0f}%-{hi * 100:.0f}% "
                   "range examined).")
    else:
        out.append(f"Net benefit (decision curve, {val}): at no threshold probability between {lo * 100:.0f}% and "
                   f"{hi * 100:.0f}% does the model beat both treating every node and treating none.")
    size_col = s.get("size_column", "original_size_ShortAxisDiameter")

    def is_size(pats):
        return any(not p.startswith("!") and "size" in p for p in pats)

    size_names = [n for n, m in result.models.items() if n != name and (m.kind == "rule" or is_size(m.patterns))]
    others = [n for n in result.models if n != name and n not in size_names]
    parts = [_versus(result, name, n, val, pct) for n in size_names]
    parts = [p for p in parts if p]
    sets = s.get("feature_sets", {})
    skipped = [(n, why) for n, why in result.skipped_models if n not in sets or is_size(sets[n])]
    if parts:
        out.append(f"Compared with node size ({val}): " + "; ".join(parts) + ".")
    if skipped and all("absent" in why or "no column matches" in why for _, why in skipped):
        out.append(f"Node size could not be compared: the column {size_col} is absent from the feature table "
                   "(extract the size feature class to add it); the size model and the 10 mm rule were skipped.")
    elif skipped:
        out.append("Node size could not be compared: " + "; ".join(f"{n}: {why}" for n, why in skipped) + ".")
    if not parts and not skipped:
        out.append("Node size was not compared (no size criterion requested).")
    parts = [p for p in (_versus(result, name, n, val, pct) for n in others) if p]
    if parts:
        out.append(f"Compared with the other models ({val}): " + "; ".join(parts) + ".")
    return out


def comparison_table(result) -> pd.DataFrame:
    """One row per compared model and cohort, in words and numbers: AUC with CI, sensitivity and
    specificity with CIs at the model's frozen threshold, calibration and net-benefit range."""
    conf = result.settings.get("conf_level", 0.95)
    pct = f"{round(conf * 100)}%"
    rows = []
    for name, m in result.models.items():
        for _, r in m.metrics.iterrows():
            if not np.isfinite(r.get("auc", np.nan)):
                continue
            cal = ""
            if isinstance(r.get("calibration_holds"), (bool, np.bool_)):
                cal = (f"{'holds' if r.calibration_holds else 'does not hold'} (CITL {r.citl:.2f}, "
                       f"slope {r.slope:.2f} [{_ci(r.slope_ci_low, r.slope_ci_high)}])")
            elif m.kind == "rule":
                cal = "not applicable (a yes/no rule gives no risk)"
            rows.append({"Model": name, "Cohort": r.cohort, "Nodes": int(r.nodes),
                         "Features": ", ".join(m.selected) if m.kind == "model" else m.patterns[0],
                         f"AUC ({pct} CI)": f"{r.auc:.3f} ({_ci(r.auc_ci_low, r.auc_ci_high, 3)})",
                         "CI": "patient-clustered" if str(r.get("ci", "")).startswith("patient") else "node-level",
                         "Threshold": m.threshold_rule,
                         f"Sensitivity ({pct} CI)": f"{r.sensitivity:.3f} ({_ci(r.sensitivity_ci_low, r.sensitivity_ci_high, 3)})",
                         f"Specificity ({pct} CI)": f"{r.specificity:.3f} ({_ci(r.specificity_ci_low, r.specificity_ci_high, 3)})",
                         "Calibration": cal, "Net benefit beats treat-all and treat-none": r.net_benefit_range})
    return pd.DataFrame(rows)


def write_report(result, out_dir, title: str = "rlnfast analysis", extra_sections=None,
                 n_feature_plots: int = 8, feature_plot_kind: str = "box") -> Path:
    """Write tables (CSV), figures (PNG + CSV) and a self-contained ``report.html`` under ``out_dir``.

    ``result``: an :class:`rlnfast.stats.AnalysisResult`. ``extra_sections``: see
    :func:`normalise_sections` (e.g. ``("Segmentation: Dice per case", dice_df)``); each is written to
    ``tables/extra_<title>.csv`` and shown at the end of the page. Feature distributions are drawn for the
    selected features and then the best-AUC screened ones, up to ``n_feature_plots``, on the training
    cohort. Returns the path of ``report.html``; ``result.files`` lists every file written.
    """
    from . import plots
    from .labels import readable

    out = Path(out_dir)
    tdir, fdir = out / "tables", out / "figures"
    tdir.mkdir(parents=True, exist_ok=True)
    fdir.mkdir(parents=True, exist_ok=True)
    extras = normalise_sections(extra_sections)
    s = result.settings
    labs = s["cohort_labels"]
    files: dict[str, Path] = {}
    conf = s.get("conf_level", 0.95)

    def table(name: str, df: pd.DataFrame) -> pd.DataFrame:
        p = tdir / f"{name}.csv"
        df.to_csv(p, index=False)
        files[f"table:{name}"] = p
        return df

    thr = result.threshold
    thr_df = pd.DataFrame([{"threshold": thr.threshold, "sensitivity_training": thr.sensitivity,
                            "specificity_training": thr.specificity, "youden_j": thr.youden_j,
                            "n_tied_optima": thr.n_best, "tie_rule": f"highest {thr.tie_rule}"}])
    calib_summary = pd.DataFrame({lab: result.calibration[lab].summary for lab in labs})
    calib_summary.index.name = "measure"
    calib_summary = calib_summary.reset_index()
    dca_all = pd.concat([dc.assign(cohort=lab) for lab, dc in result.decision_curves.items()], ignore_index=True)
    lo, hi = s.get("dca_report_range", (0.10, 0.70))
    dca_rep = dca_all[(dca_all.threshold >= lo - 1e-12) & (dca_all.threshold <= hi + 1e-12)]

    table("cohorts", result.cohorts)
    table("screening", result.screening)
    table("selection", result.selection.table)
    table("model", result.model_table)
    table("threshold", thr_df)
    table("threshold_ties", thr.tied)
    table("performance", result.performance)
    table("comparisons", result.comparisons)
    table("calibration_summary", calib_summary)
    for lab in labs:
        table(f"calibration_bins_{_slug(lab)}", result.calibration[lab].bins)
    table("decision_curve", dca_all)
    table(f"decision_curve_{round(lo * 100)}_{round(hi * 100)}", dca_rep)
    table("predictions", result.predictions)
    table("settings", _settings_table(s))
    table("versions", _settings_table(result.versions))
    table("model_comparison", result.model_comparison)
    table("model_tests", result.model_tests)
    table("feature_table", result.feature_table)
    table("skipped_models", pd.DataFrame(result.skipped_models, columns=["model", "reason"]))
    summary = summary_sentences(result)
    (out / "summary.txt").write_text("\n".join(summary) + "\n", encoding="utf-8")
    files["summary"] = out / "summary.txt"
    if result.selection.lasso is not None:
        table("lasso_path", result.selection.lasso.path)
    for t, df, _ in extras:
        table(f"extra_{_slug(t)}", df)

    figs: dict[str, str] = {}
    curves = {lab: result.cohort_data(lab)[:2] for lab in labs}
    groups = {lab: result.cohort_data(lab)[2] for lab in labs} if s.get("patient") else None
    nb = min(int(s.get("n_bootstrap") or 0), 1000)

    fig, ax = plots.new_figure(width=6.0, height=6.0)
    plots.plot_roc(ax, curves, n_bootstrap=nb, groups=groups, conf_level=conf, seed=s.get("seed", 0),
                   csv_path=fdir / "roc.csv")
    figs["roc"] = _png(fig, fdir / "roc.png")

    fig, ax = plots.new_figure(width=6.0, height=6.0)
    plots.plot_calibration(ax, curves, n_bins=s.get("n_bins", 10), conf_level=conf, csv_path=fdir / "calibration.csv")
    figs["calibration"] = _png(fig, fdir / "calibration.png")

    fig, ax = plots.new_figure(width=7.0, height=5.0)
    plots.plot_decision_curve(ax, result.decision_curves, xlim=(lo, hi), csv_path=fdir / "decision_curve.csv")
    figs["decision_curve"] = _png(fig, fdir / "decision_curve.png")

    scr = result.screening
    show = list(result.features)  # exactly the model's features
    if show:
        ncols = min(4, len(show))
        nrows = int(math.ceil(len(show) / ncols))
        fig, axes = plots.new_figure(nrows, ncols, width=3.0, height=3.0, squeeze=False)
        train = result.data[result.data["_cohort"] == labs[0]]
        plots.plot_features(axes, train, show, s["outcome"], scr, kind=feature_plot_kind,
                            csv_path=fdir / "features.csv")
        figs["features"] = _png(fig, fdir / "features.png")

    if len(result.models) >= 2:
        fig, axes = plots.new_figure(1, 2, width=6.0, height=6.0)
        parts = []
        for ax, lab in zip(axes, labs):
            cur = {}
            for name, m in result.models.items():
                sel = (result.data["_cohort"] == lab).to_numpy() & np.isfinite(m.risk)
                yv = result.data.loc[sel, s["outcome"]].to_numpy(int)
                if yv.size and yv.min() != yv.max():
                    cur[name] = (yv, m.risk[sel])
            if cur:
                parts.append(plots.plot_roc(ax, cur, n_bootstrap=0, conf_level=conf, title=f"ROC curves: {lab}")
                             .assign(cohort=lab))
        pd.concat(parts, ignore_index=True).to_csv(fdir / "comparison_roc.csv", index=False)
        figs["comparison_roc"] = _png(fig, fdir / "comparison_roc.png")
        fig, axes = plots.new_figure(1, 2, width=6.0, height=4.8)
        parts = []
        for ax, lab in zip(axes, labs):
            cur = {n: m.decision_curves[lab] for n, m in result.models.items() if lab in m.decision_curves}
            if cur:
                parts.append(plots.plot_decision_curves(ax, cur, xlim=(lo, hi), title=f"Decision curves: {lab}")
                             .assign(cohort=lab))
        pd.concat(parts, ignore_index=True).to_csv(fdir / "comparison_decision_curve.csv", index=False)
        figs["comparison_decision_curve"] = _png(fig, fdir / "comparison_decision_curve.png")
    if result.selection.lasso is not None:
        fig, ax = plots.new_figure(width=7.0, height=4.5)
        plots.plot_lasso_path(ax, result.selection.lasso, csv_path=fdir / "lasso_path.csv")
        figs["lasso_path"] = _png(fig, fdir / "lasso_path.png")
    for k in figs:
        files[f"figure:{k}"] = fdir / f"{k}.png"
        files[f"figure_data:{k}"] = fdir / f"{k}.csv"

    e = html.escape
    pct = f"{round(conf * 100)}%"
    H = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
         f"<h1>{e(title)}</h1>",
         f"<p>Generated {e(_dt.datetime.now().isoformat(timespec='seconds'))} by rlnfast "
         f"{e(str(result.versions.get('rlnfast', '')))}. Outcome <code>{e(s['outcome'])}</code> (1 = event), "
         f"cohort column <code>{e(s['cohort'])}</code>"
         + (f", patient column <code>{e(str(s['patient']))}</code>" if s.get("patient") else "")
         + f". Model features: {e(', '.join(map(str, result.features)))}.</p>"]
    if result.notes:
        H.append("<div class=\"note\">" + "<br>".join(e(str(n)) for n in result.notes) + "</div>")

    H += ["<h2>Summary</h2>", '<div class="summary">'] + [f"<p>{e(t)}</p>" for t in summary] + ["</div>"]
    ft = result.feature_table
    if not ft.empty:
        from .labels import feature_unit

        show_ft = pd.DataFrame({
            "Feature": ft.feature, "Unit": [feature_unit(f) or "" for f in ft.feature], "Cohort": ft.cohort,
            "Nodes": ft.nodes, "Higher in": ft.higher_in,
            f"AUC ({pct} CI)": [f"{a:.3f} ({_ci(lo_, hi_, 3)})" if np.isfinite(a) else "" for a, lo_, hi_ in
                                zip(ft.get("auc", np.nan), ft.get("auc_ci_low", np.nan), ft.get("auc_ci_high", np.nan))],
            "Cut-off (from training)": ft.cutoff, "Sensitivity": ft.get("sensitivity"),
            "Specificity": ft.get("specificity"), "p (metastatic vs not)": ft.get("p")})
        H += ["<h2>1. The model's features one by one (the study's table)</h2>",
              f"<p>Each feature of the {e(s.get('model_name', 'model'))} alone: AUC with DeLong {e(pct)} CI "
              "(node-level), sensitivity and specificity at the feature's own Youden cut-off chosen on "
              f"{e(labs[0])} and frozen, two-sided Mann-Whitney p of metastatic vs non-metastatic nodes.</p>",
              html_table(show_ft)]
    H += ["<h2>2. Comparison: the models built from the named feature sets, and node size</h2>",
          "<p>Every model is built by the same procedure (screening, selection and the classifier on "
          f"{e(labs[0])} only, Youden threshold frozen); the size rule calls a node positive from a short axis of "
          f"10 mm (RECIST 1.1) with nothing fitted. AUC CIs are "
          + ("patient-clustered (Obuchowski), sensitivity/specificity CIs Wilson with the Rao-Scott design effect"
             if s.get("patient") else "node-level (DeLong; Wilson for sensitivity/specificity)")
          + ". Feature sets: " + e("; ".join(f"{k} = {', '.join(v)}" for k, v in s.get("feature_sets", {}).items()))
          + ".</p>"]
    if result.skipped_models:
        H.append('<div class="note">' + "<br>".join(e(f"{n}: {why}") for n, why in result.skipped_models) + "</div>")
    cmp_tab = comparison_table(result)
    if not cmp_tab.empty:
        H.append(html_table(cmp_tab))
    if not result.model_tests.empty:
        H += ["<p>Paired DeLong tests on the nodes both models score (R pROC <code>roc.test(method='delong', "
              "paired=TRUE)</code>; nodes treated as independent)"
              + ("; p (patient-clustered): Obuchowski's clustered test" if s.get("patient") else "") + ".</p>",
              html_table(result.model_tests)]
    if "comparison_roc" in figs:
        H.append(_figure_html(figs["comparison_roc"], "ROC curves of all compared models on the same nodes, per "
                              f"cohort; legend: AUC ({pct} DeLong CI, node-level).", "ROC curves of the compared models"))
        H.append(_figure_html(figs["comparison_decision_curve"], "Decision curves of all compared models on the same "
                              "nodes, per cohort, with treat-all and treat-none.", "Decision curves of the compared models"))
    H += ["<p>The full tables of the headline model follow.</p>"]
    H += ["<h2>3. Participants and events (TRIPOD 8, 13a, 14a)</h2>", html_table(result.cohorts)]
    perf_show = result.performance.copy()
    H += ["<h2>4. Performance per cohort with confidence intervals (TRIPOD 16)</h2>",
          f"<p>AUC with DeLong {e(pct)} CI (and stratified percentile bootstrap CI"
          f"{', clustered by patient' if s.get('patient') else ''}, when requested); sensitivity, specificity, "
          f"PPV, NPV and accuracy at the frozen threshold {e(_fmt(thr.threshold))} with Wilson {e(pct)} CIs. "
          + ("The column 'Clustering' says which intervals treat the nodes as independent (node-level: too narrow "
             "when patients contribute several nodes) and which account for the patient (Obuchowski's clustered "
             "AUC; Wilson with the Rao-Scott design effect); the summary quotes the patient-clustered ones."
             if s.get("patient") else "No patient column was given: every interval treats nodes as independent.")
          + "</p>",
          html_table(perf_show),
          _figure_html(figs["roc"], f"ROC curves per cohort; legend: AUC ({pct} DeLong CI); band: pointwise "
                       f"{pct} bootstrap band of sensitivity ({nb} replicates).", "ROC curves")]
    H += ["<h2>5. Decision threshold (TRIPOD 11, 15b)</h2>",
          f"<p>{e(s['threshold_rule'])}. Nodes with predicted risk &gt;= the threshold are called positive.</p>",
          html_table(thr_df)]
    if thr.n_best > 1:
        H += ["<p>Tied optima (all maximise Youden's J):</p>", html_table(thr.tied)]
    H += ["<h2>6. Comparisons of AUCs</h2>",
          "<p>Unpaired DeLong test between cohorts (statistic D, Welch df, as pROC); paired DeLong tests of the "
          "model against each selected feature alone (oriented by its training direction).</p>",
          html_table(result.comparisons)]
    H += ["<h2>7. Calibration</h2>",
          "<p>Calibration-in-the-large (intercept with logit(p) as offset), calibration slope and intercept "
          "(logistic recalibration), Brier and scaled Brier, Emax/E90/Eavg from the lowess curve, Spiegelhalter "
          "z, Hosmer-Lemeshow (quantile groups, df = G - 2) and every rms <code>val.prob</code> statistic.</p>",
          html_table(calib_summary.assign(measure=[readable(m) for m in calib_summary.measure])),
          _figure_html(figs["calibration"], f"Calibration: observed rate in {s.get('n_bins', 10)} quantile bins "
                       f"(Wilson {pct} CI) and lowess curve (rms val.prob settings).", "Calibration plot")]
    for lab in labs:
        H += [f"<h3>Calibration bins: {e(lab)}</h3>", html_table(result.calibration[lab].bins)]
    step_rows = dca_rep[np.isclose((dca_rep.threshold * 100) % 5, 0) | np.isclose((dca_rep.threshold * 100) % 5, 5)]
    H += [f"<h2>8. Decision curve ({round(lo * 100)}-{round(hi * 100)}% thresholds)</h2>",
          "<p>Net benefit = TP/N - FP/N x t/(1-t) (dcurves.dca); every 5% shown here, every 1% in the CSV.</p>",
          html_table(step_rows[["cohort", "threshold", "net_benefit_model", "net_benefit_all", "net_benefit_none",
                                "net_intervention_avoided"]]),
          _figure_html(figs["decision_curve"], "Decision curve: net benefit of the model, treat-all and treat-none.",
                       "Decision curve")]
    H += ["<h2>9. Model (TRIPOD 10a, 10b, 10c, 15a)</h2>",
          f"<p>{e(str(s.get('estimator')))}; fitted on the {e(labs[0])} cohort only.</p>",
          html_table(result.model_table)]
    H += ["<h2>10. Feature selection (TRIPOD 10b)</h2>",
          f"<p>Settings: {e(str(result.selection.settings))}.</p>", html_table(result.selection.table)]
    if "lasso_path" in figs:
        H.append(_figure_html(figs["lasso_path"], f"LASSO path; chosen C = {_fmt(result.selection.lasso.C)} "
                              f"({result.selection.lasso.cv}).", "LASSO path"))
    H += ["<h2>11. Univariate screening on the training cohort (TRIPOD 14b)</h2>",
          "<p>Per-class summaries, Mann-Whitney U p, Welch t p, Benjamini-Hochberg q, AUC with DeLong CI and "
          "direction. Features that could not be screened carry a reason.</p>",
          '<div class="scroll">' + html_table(result.screening) + "</div>"]
    if "features" in figs:
        H.append(_figure_html(figs["features"], "Feature distributions by outcome (training cohort); p = "
                              "Mann-Whitney, q = Benjamini-Hochberg.", "Feature distributions"))
    H += ["<h2>12. Predictions per node</h2>",
          "<details><summary>Show the predicted risk of every node</summary>"
          '<div class="scroll">' + html_table(result.predictions) + "</div></details>"]
    for i, (t, df, note) in enumerate(extras, start=13):
        H += [f"<h2>{i}. {e(t)}</h2>"] + ([f"<p>{e(note)}</p>"] if note else []) + [html_table(df)]
    n = 13 + len(extras)
    H += [f"<h2>{n}. TRIPOD items covered</h2>",
          html_table(pd.DataFrame(TRIPOD_ITEMS, columns=["item", "topic", "where in this report"])),
          f"<h2>{n + 1}. Settings</h2>", html_table(_settings_table(s)),
          f"<h2>{n + 2}. Software versions</h2>", html_table(_settings_table(result.versions)),
          "</body></html>"]
    page = out / "report.html"
    page.write_text("\n".join(H), encoding="utf-8")
    files["report"] = page
    result.files.update(files)
    return page
