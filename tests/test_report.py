"""``rlnfast analyze`` end to end: files, escaping, and the HTML report rendered in headless Chromium.

Chromium comes from Debian's packages (``apt-get install -y chromium``); the browser test skips, saying so,
only where no chromium binary exists.
"""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import special

from rlnfast import cli, stats
from rlnfast.stats import report

EVIL = "<script>alert('x')</script>&co"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _feature_table(seed: int = 7) -> pd.DataFrame:
    """~200 nodes of ~75 patients: 3 informative features, noise, one constant, one all-NaN, one text."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(75):
        frailty = rng.normal(scale=0.7)
        for _ in range(int(rng.integers(1, 5))):
            lin = rng.normal() + frailty
            y = int(rng.random() < special.expit(1.6 * lin - 0.4))
            rows.append({
                "patient": EVIL if i == 3 else f"P{i:03d}", "label": y,
                "cohort": "training" if i < 45 else "validation",
                "original_firstorder_Mean": 30 + 8 * lin + rng.normal(scale=6),
                "E_firstorder_Entropy": 2 + 0.5 * lin + rng.normal(scale=0.6),
                "DEM_fractal_FD": 1.5 - 0.1 * lin + rng.normal(scale=0.12),
                "noise_a": rng.normal(), "noise_b": rng.gamma(2.0),
                "constant_feature": 5.0, "empty_feature": np.nan, "note": "text",
            })
    df = pd.DataFrame(rows)
    df.loc[df.index[::17], "E_firstorder_Entropy"] = np.nan  # some missing values
    return df


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("analyze")
    table = tmp / "features.csv"
    _feature_table().to_csv(table, index=False)
    out = tmp / "report"
    rc = cli.main(["analyze", str(table), "--outcome", "label", "--cohort", "cohort", "--patient", "patient",
                   "--exclude", "note", "--lasso", "--bootstrap", "300", "-o", str(out)])
    assert rc == 0
    return out


def test_files_written(analyzed):
    out = analyzed
    for name in ("cohorts", "screening", "selection", "model", "threshold", "performance", "comparisons",
                 "calibration_summary", "calibration_bins_training", "calibration_bins_validation",
                 "decision_curve", "decision_curve_10_70", "predictions", "lasso_path", "settings", "versions"):
        assert (out / "tables" / f"{name}.csv").is_file(), name
    for fig in ("roc", "calibration", "decision_curve", "features", "lasso_path"):
        png = out / "figures" / f"{fig}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC, fig
        assert len(pd.read_csv(out / "figures" / f"{fig}.csv")) > 0, fig
    cohorts = pd.read_csv(out / "tables" / "cohorts.csv").set_index("cohort")
    df = _feature_table()
    for lab in ("training", "validation"):
        sub = df[df.cohort == lab]
        assert cohorts.at[lab, "nodes"] == len(sub)
        assert cohorts.at[lab, "events"] == sub.label.sum()
        assert cohorts.at[lab, "patients"] == sub.patient.nunique()
    scr = pd.read_csv(out / "tables" / "screening.csv", keep_default_na=False).set_index("feature")
    assert "constant" in scr.at["constant_feature", "reason"]
    assert "missing" in scr.at["empty_feature", "reason"]
    assert "note" not in scr.index  # excluded on request, not silently
    perf = pd.read_csv(out / "tables" / "performance.csv")
    assert {"AUC", "sensitivity", "specificity", "PPV", "NPV"} <= set(perf.measure)
    assert (perf.method.str.contains("patient-clustered")).any()
    dca = pd.read_csv(out / "tables" / "decision_curve_10_70.csv")
    assert dca.threshold.min() == pytest.approx(0.10) and dca.threshold.max() == pytest.approx(0.70)
    roc = pd.read_csv(out / "figures" / "roc.csv")
    assert set(roc.kind) == {"curve", "band"}


def test_html_self_contained_and_escaped(analyzed):
    page = (analyzed / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page.lower(), "the report has no script, and case ids must be escaped"
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;co" in page
    srcs = re.findall(r'src="([^"]*)"', page)
    # roc, calibration, decision curve, features, LASSO path, and the comparison (model vs conventional
    # radiomics: original_firstorder_Mean matches that default set) ROC and decision curves
    assert len(srcs) == 7 and all(s.startswith("data:image/png;base64,") for s in srcs)
    for s in srcs:
        assert base64.b64decode(s.split(",", 1)[1])[:8] == PNG_MAGIC
    assert "<link" not in page and "http://" not in page and "https://" not in page
    for text in ("TRIPOD", "Youden", "DeLong", "Wilson", "scikit-learn", "statsmodels", "dcurves", "Software versions",
                 "Hosmer-Lemeshow", "LASSO"):
        assert text in page, text


def test_extra_section_and_library_call(tmp_path):
    df = _feature_table(seed=11)
    dice = pd.DataFrame({"case": [EVIL, "c2"], "dice": [0.81, 0.77]})
    res = stats.analyze(df, "label", "cohort", "patient", exclude=["note"], n_bootstrap=0, out_dir=tmp_path,
                        extra_sections=[("Segmentation <Dice>", dice, "nnU-Net vs manual")])
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Segmentation &lt;Dice&gt;" in page and "nnU-Net vs manual" in page and "0.8100" in page
    assert "<script" not in page.lower()
    assert pd.read_csv(tmp_path / "tables" / "extra_segmentation_dice.csv").dice.tolist() == [0.81, 0.77]
    assert res.files["report"] == tmp_path / "report.html"
    with pytest.raises(ValueError, match="extra_sections"):
        report.normalise_sections([("title only",)])


def test_cli_bad_input_reports_column(tmp_path, capsys):
    df = _feature_table()
    df.loc[df.index[0], "label"] = 3
    table = tmp_path / "bad.csv"
    df.to_csv(table, index=False)
    rc = cli.main(["analyze", str(table), "--outcome", "label", "--cohort", "cohort", "-o", str(tmp_path / "o")])
    assert rc == 2
    assert "outcome column 'label' must be 0/1" in capsys.readouterr().err
    rc = cli.main(["analyze", str(table), "--outcome", "lbl", "--cohort", "cohort", "-o", str(tmp_path / "o")])
    assert rc == 2
    assert "outcome column 'lbl' not found" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- Chromium

def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


# Injected into a copy of the page only: records load errors and, after load, whether every <img> decoded.
_PROBE = """<script>
window.__errs = [];
window.addEventListener('error', function (e) {
  window.__errs.push(String(e.message || (e.target && e.target.alt) || 'resource error').slice(0, 120));
}, true);
window.addEventListener('load', function () {
  var im = document.images, bad = [], widths = [];
  for (var i = 0; i < im.length; i++) {
    widths.push(im[i].naturalWidth);
    if (!(im[i].complete && im[i].naturalWidth > 0)) bad.push(im[i].alt);
  }
  var d = document.createElement('pre'); d.id = 'rlnfast-probe';
  d.textContent = JSON.stringify({images: im.length, widths: widths, bad: bad, errors: window.__errs,
                                  scripts: document.scripts.length, h2: document.querySelectorAll('h2').length,
                                  text: document.body.textContent.indexOf("<scr" + "ipt>alert('x')</scr" + "ipt>&co") >= 0});
  document.body.appendChild(d);
});
</script>"""


def _render(browser: str, page: Path, tmp: Path) -> dict:
    probe = tmp / f"probe_{page.stem}.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + _PROBE, 1), encoding="utf-8")
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp / 'chromium-profile'}", "--virtual-time-budget=10000",
           "--dump-dom", probe.as_uri()]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("chromium did not finish within 60 s (a blocking dialog, e.g. an unescaped alert()?)")
    m = re.search(r'<pre id="rlnfast-probe">(.*?)</pre>', done.stdout, re.S)
    assert m, f"chromium did not render the page (rc={done.returncode}): {done.stderr[-2000:]}"
    return json.loads(m.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&"))


def test_report_renders_in_chromium(analyzed, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary on PATH (install it with: apt-get install -y chromium)")
    res = _render(browser, analyzed / "report.html", tmp_path)
    assert res["errors"] == [], res
    assert res["images"] == 7 and res["bad"] == [], res
    assert all(w > 300 for w in res["widths"]), res
    assert res["scripts"] == 1, "only the probe runs: the report itself has no script"
    assert res["text"], "the escaped case id shows as text"
    assert res["h2"] >= 12
    # the probe itself can fail: a corrupt figure is reported as not decoded
    broken = tmp_path / "broken.html"
    page = (analyzed / "report.html").read_text(encoding="utf-8")
    broken.write_text(page.replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1), encoding="utf-8")
    bad = _render(browser, broken, tmp_path)
    assert bad["images"] == 7 and len(bad["bad"]) == 1 and bad["errors"], bad


# --------------------------------------------------------------------- summary and comparison (issue 16)

@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    from test_stats import study_table

    tmp = tmp_path_factory.mktemp("compare")
    table = tmp / "features.csv"
    study_table().to_csv(table, index=False)
    out = tmp / "report"
    rc = cli.main(["analyze", str(table), "--outcome", "y", "--cohort", "set", "--patient", "pid",
                   "--model-set", "DEM model", "--feature-set", "E only=E_original_*", "--bootstrap", "100",
                   "-o", str(out)])
    assert rc == 0
    return out


def test_summary_comes_first_in_plain_words(compared):
    page = (compared / "report.html").read_text(encoding="utf-8")
    assert page.index("<h2>Summary</h2>") < page.index("1. The model") < page.index("2. Comparison") \
        < page.index("Participants and events")
    summary = (compared / "summary.txt").read_text(encoding="utf-8")
    perf = pd.read_csv(compared / "tables" / "model_comparison.csv")
    v = perf[(perf.model == "DEM model") & (perf.cohort == "validation")].iloc[0]
    for text in ("Predicted: lymph-node metastasis", "validation cohort", "accounting for several nodes per patient",
                 f"validation AUC {v.auc:.2f} (95% CI {v.auc_ci_low:.2f}-{v.auc_ci_high:.2f}",
                 f"sensitivity {v.sensitivity:.2f}", f"specificity {v.specificity:.2f}", "Calibration ",
                 "Net benefit", "Compared with node size", "10 mm rule", "conventional radiomics"):
        assert text in summary, text
    # the headline CI is the patient-clustered one, and the node-level one is labelled as such
    assert v.ci.startswith("patient-clustered")
    p = pd.read_csv(compared / "tables" / "performance.csv")
    assert set(p[p.measure == "AUC"].clustering) == {"node-level", "patient-clustered"}
    assert "Clustering" in page and "node-level" in page


def test_comparison_section_with_all_models(compared):
    page = (compared / "report.html").read_text(encoding="utf-8")
    section = page[page.index("2. Comparison"):page.index("Participants and events")]
    for name in ("DEM model", "conventional radiomics", "node size (short axis)", "10 mm rule", "E only"):
        assert name in section, name
    assert "Paired DeLong" in section and "roc.test" in section
    tests = pd.read_csv(compared / "tables" / "model_tests.csv")
    assert len(tests) == 2 * 10  # 5 models, every pair, both cohorts
    for fig in ("comparison_roc", "comparison_decision_curve"):
        assert (compared / "figures" / f"{fig}.png").read_bytes()[:8] == PNG_MAGIC
        d = pd.read_csv(compared / "figures" / f"{fig}.csv")
        assert set(d.label) == {"DEM model", "conventional radiomics", "node size (short axis)", "10 mm rule",
                                "E only"}, fig
    study = pd.read_csv(compared / "tables" / "feature_table.csv")
    sel = pd.read_csv(compared / "tables" / "selection.csv")
    assert set(study.feature) == set(sel[sel.selected].feature)
    assert {"auc", "auc_ci_low", "auc_ci_high", "sensitivity", "specificity", "p"} <= set(study.columns)


def test_readable_headers(compared):
    page = (compared / "report.html").read_text(encoding="utf-8")
    headers = re.findall(r"<th>(.*?)</th>", page)
    assert headers
    snake = [h for h in headers if re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", h)]
    assert snake == [], snake
    for raw in ("missing_values_in_model_features", "rms D:Chi-sq", "calibration_in_the_large"):
        assert raw not in page, raw
    # the CSV files keep the machine names
    assert "missing_values_in_model_features" in pd.read_csv(compared / "tables" / "cohorts.csv").columns


def test_feature_figure_shows_exactly_the_model_features(compared):
    sel = pd.read_csv(compared / "tables" / "selection.csv")
    shown = pd.read_csv(compared / "figures" / "features.csv")
    assert set(shown.feature) == set(sel[sel.selected].feature)


@pytest.mark.parametrize("feature, unit", [("original_firstorder_Mean", "HU"), ("E_original_firstorder_Mean", "\u2030"),
                                           ("DEM_original_firstorder_90Percentile", "\u2030"),
                                           ("E_original_firstorder_Entropy", "bits"),
                                           ("original_firstorder_Variance", "HU\u00b2"),
                                           ("original_fractal_MaskFD_local_1", "dimensionless"),
                                           ("DEM_original_fractal_DBCFD", "dimensionless"),
                                           ("original_size_ShortAxisDiameter", "mm"),
                                           ("original_firstorder_Skewness", "dimensionless")])
def test_feature_axes_carry_units(feature, unit):
    from rlnfast.stats import plots

    fig, ax = plots.new_figure()
    rng = np.random.default_rng(0)
    plots.plot_feature(ax, rng.normal(size=40), np.arange(40) % 2, feature=feature)
    assert ax.get_ylabel() == unit
    fig2, ax2 = plots.new_figure()
    plots.plot_feature(ax2, rng.normal(size=40), np.arange(40) % 2, feature="age")
    assert ax2.get_ylabel() == "value"  # unknown unit: said, not invented


def test_calibration_curve_within_unit_interval(tmp_path):
    from rlnfast.stats import plots

    rng = np.random.default_rng(0)
    p = rng.random(200)
    y = (p > 0.5).astype(int)
    raw = stats.calibration_smooth(y, p)
    assert raw.observed.min() < 0, "this data makes lowess overshoot (the case to guard against)"
    fig, ax = plots.new_figure()
    d = plots.plot_calibration(ax, {"v": (y, p)}, csv_path=tmp_path / "c.csv")
    lw = d[d.kind == "lowess"].observed
    assert lw.min() >= 0 and lw.max() <= 1
    for line in ax.get_lines():
        yd = np.asarray(line.get_ydata(), float)
        assert yd.min() >= 0 and yd.max() <= 1


def test_comparison_report_renders_in_chromium(compared, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary on PATH (install it with: apt-get install -y chromium)")
    res = _render(browser, compared / "report.html", tmp_path)
    assert res["errors"] == [] and res["bad"] == [], res
    assert res["images"] == 6, res  # roc, calibration, decision curve, features, comparison ROC and DCA
