"""``rlnfast analyze`` end to end: files, escaping, and the HTML report rendered in headless Chromium.

Chromium comes from Debian's packages (``apt-get install -y chromium``); where no chromium binary exists the
browser test skips saying so, and fails naming it under CI=true (conftest.chromium).
"""
from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import special

from rlnfast import cli, stats
from rlnfast.stats import report

from conftest import chromium

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
    assert len(srcs) == 5 and all(s.startswith("data:image/png;base64,") for s in srcs)
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

def _chromium() -> str:
    """The Chromium binary; absent: skip saying how to install it (fail under CI=true): conftest.chromium."""
    return chromium()


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
    res = _render(browser, analyzed / "report.html", tmp_path)
    assert res["errors"] == [], res
    assert res["images"] == 5 and res["bad"] == [], res
    assert all(w > 300 for w in res["widths"]), res
    assert res["scripts"] == 1, "only the probe runs: the report itself has no script"
    assert res["text"], "the escaped case id shows as text"
    assert res["h2"] >= 12
    # the probe itself can fail: a corrupt figure is reported as not decoded
    broken = tmp_path / "broken.html"
    page = (analyzed / "report.html").read_text(encoding="utf-8")
    broken.write_text(page.replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1), encoding="utf-8")
    bad = _render(browser, broken, tmp_path)
    assert bad["images"] == 5 and len(bad["bad"]) == 1 and bad["errors"], bad
