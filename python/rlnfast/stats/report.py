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

__all__ = ["write_report", "html_table", "normalise_sections", "TRIPOD_ITEMS"]

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


def html_table(df: pd.DataFrame, max_rows: int | None = None, index: bool = False) -> str:
    """An HTML ``<table>`` of ``df`` with every header and cell passed through ``html.escape``.

    Floats are shown with 4 decimals (or 4 significant digits above 1, scientific below 0.001), NaN as an
    empty cell; text cells are left-aligned. ``max_rows`` truncates with a note (the CSV has all rows).
    """
    d = df.reset_index() if index else df
    shown = d if max_rows is None or len(d) <= max_rows else d.iloc[:max_rows]
    out = ["<table>", "<thead><tr>"]
    out += [f"<th>{html.escape(str(c))}</th>" for c in shown.columns]
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
    ok = scr[scr.reason == ""].sort_values("auc", ascending=False, kind="mergesort")
    show = list(result.features) + [f for f in ok.feature if f not in result.features]
    show = show[:max(n_feature_plots, len(result.features))] if n_feature_plots else list(result.features)
    if show:
        ncols = min(4, len(show))
        nrows = int(math.ceil(len(show) / ncols))
        fig, axes = plots.new_figure(nrows, ncols, width=3.0, height=3.0, squeeze=False)
        train = result.data[result.data["_cohort"] == labs[0]]
        plots.plot_features(axes, train, show, s["outcome"], scr, kind=feature_plot_kind,
                            csv_path=fdir / "features.csv")
        figs["features"] = _png(fig, fdir / "features.png")

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

    H += ["<h2>1. Participants and events (TRIPOD 8, 13a, 14a)</h2>", html_table(result.cohorts)]
    perf_show = result.performance.copy()
    H += ["<h2>2. Performance per cohort with confidence intervals (TRIPOD 16)</h2>",
          f"<p>AUC with DeLong {e(pct)} CI (and stratified percentile bootstrap CI"
          f"{', clustered by patient' if s.get('patient') else ''}, when requested); sensitivity, specificity, "
          f"PPV, NPV and accuracy at the frozen threshold {e(_fmt(thr.threshold))} with Wilson {e(pct)} CIs.</p>",
          html_table(perf_show),
          _figure_html(figs["roc"], f"ROC curves per cohort; legend: AUC ({pct} DeLong CI); band: pointwise "
                       f"{pct} bootstrap band of sensitivity ({nb} replicates).", "ROC curves")]
    H += ["<h2>3. Decision threshold (TRIPOD 11, 15b)</h2>",
          f"<p>{e(s['threshold_rule'])}. Nodes with predicted risk &gt;= the threshold are called positive.</p>",
          html_table(thr_df)]
    if thr.n_best > 1:
        H += ["<p>Tied optima (all maximise Youden's J):</p>", html_table(thr.tied)]
    H += ["<h2>4. Comparisons of AUCs</h2>",
          "<p>Unpaired DeLong test between cohorts (statistic D, Welch df, as pROC); paired DeLong tests of the "
          "model against each selected feature alone (oriented by its training direction).</p>",
          html_table(result.comparisons)]
    H += ["<h2>5. Calibration</h2>",
          "<p>Calibration-in-the-large (intercept with logit(p) as offset), calibration slope and intercept "
          "(logistic recalibration), Brier and scaled Brier, Emax/E90/Eavg from the lowess curve, Spiegelhalter "
          "z, Hosmer-Lemeshow (quantile groups, df = G - 2) and every rms <code>val.prob</code> statistic.</p>",
          html_table(calib_summary),
          _figure_html(figs["calibration"], f"Calibration: observed rate in {s.get('n_bins', 10)} quantile bins "
                       f"(Wilson {pct} CI) and lowess curve (rms val.prob settings).", "Calibration plot")]
    for lab in labs:
        H += [f"<h3>Calibration bins: {e(lab)}</h3>", html_table(result.calibration[lab].bins)]
    step_rows = dca_rep[np.isclose((dca_rep.threshold * 100) % 5, 0) | np.isclose((dca_rep.threshold * 100) % 5, 5)]
    H += [f"<h2>6. Decision curve ({round(lo * 100)}-{round(hi * 100)}% thresholds)</h2>",
          "<p>Net benefit = TP/N - FP/N x t/(1-t) (dcurves.dca); every 5% shown here, every 1% in the CSV.</p>",
          html_table(step_rows[["cohort", "threshold", "net_benefit_model", "net_benefit_all", "net_benefit_none",
                                "net_intervention_avoided"]]),
          _figure_html(figs["decision_curve"], "Decision curve: net benefit of the model, treat-all and treat-none.",
                       "Decision curve")]
    H += ["<h2>7. Model (TRIPOD 10a, 10b, 10c, 15a)</h2>",
          f"<p>{e(str(s.get('estimator')))}; fitted on the {e(labs[0])} cohort only.</p>",
          html_table(result.model_table)]
    H += ["<h2>8. Feature selection (TRIPOD 10b)</h2>",
          f"<p>Settings: {e(str(result.selection.settings))}.</p>", html_table(result.selection.table)]
    if "lasso_path" in figs:
        H.append(_figure_html(figs["lasso_path"], f"LASSO path; chosen C = {_fmt(result.selection.lasso.C)} "
                              f"({result.selection.lasso.cv}).", "LASSO path"))
    H += ["<h2>9. Univariate screening on the training cohort (TRIPOD 14b)</h2>",
          "<p>Per-class summaries, Mann-Whitney U p, Welch t p, Benjamini-Hochberg q, AUC with DeLong CI and "
          "direction. Features that could not be screened carry a reason.</p>",
          '<div class="scroll">' + html_table(result.screening) + "</div>"]
    if "features" in figs:
        H.append(_figure_html(figs["features"], "Feature distributions by outcome (training cohort); p = "
                              "Mann-Whitney, q = Benjamini-Hochberg.", "Feature distributions"))
    H += ["<h2>10. Predictions per node</h2>",
          "<details><summary>Show the predicted risk of every node</summary>"
          '<div class="scroll">' + html_table(result.predictions) + "</div></details>"]
    for i, (t, df, note) in enumerate(extras, start=11):
        H += [f"<h2>{i}. {e(t)}</h2>"] + ([f"<p>{e(note)}</p>"] if note else []) + [html_table(df)]
    n = 11 + len(extras)
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
