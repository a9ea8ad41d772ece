"""The main job end to end: a reduced `rlnfast demo` through the CLI, its files, its numbers, its report."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rlnfast.cli import main as cli

from test_report import _chromium, _render

ARGS = ["--cases", "120", "--shape", "32", "64", "64", "--bootstrap", "100", "--quiet"]


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory):
    a, b = tmp_path_factory.mktemp("demo_a"), tmp_path_factory.mktemp("demo_b")
    assert cli(["demo", "-o", str(a), *ARGS]) == 0
    assert cli(["demo", "-o", str(b), *ARGS]) == 0
    return a, b


def _auc(folder, cohort):
    perf = pd.read_csv(folder / "report" / "tables" / "performance.csv")
    row = perf[(perf.cohort == cohort) & (perf.measure == "AUC") & (perf.method == "DeLong")].iloc[0]
    return row.estimate, row.ci_low, row.ci_high


def test_validation_auc_reproducible_and_informative(demo_runs):
    a, b = demo_runs
    assert _auc(a, "validation") == _auc(b, "validation"), "same seed, same numbers"
    auc, lo, hi = _auc(a, "validation")
    assert auc > 0.7 and lo < auc < hi


def test_feature_table_columns(demo_runs):
    a, _ = demo_runs
    feats = pd.read_csv(a / "features.csv")
    for col in ("ID", "label", "original_firstorder_Entropy", "E_original_firstorder_Entropy",
                "DEM_original_firstorder_Entropy", "diagnostics_Mask-original_VoxelNum"):
        assert col in feats.columns, col
    fractal = [c for c in feats.columns if "_fractal_" in c]
    for col in ("original_fractal_MaskFD", "original_fractal_SurfaceFD", "original_fractal_Lacunarity",
                "original_fractal_DBCFD", "E_original_fractal_DBCFD", "DEM_original_fractal_DBCFD"):
        assert col in fractal, col
    nodes = pd.read_csv(a / "data" / "nodes.csv")
    assert len(feats) == len(nodes) and set(nodes.cohort) == {"training", "validation"}
    assert np.isfinite(feats["E_original_firstorder_Entropy"]).all()
    assert np.isfinite(feats["original_fractal_MaskFD"]).mean() > 0.9, "fractal features must be computable"


def test_report_files_and_rendering(demo_runs, tmp_path):
    a, _ = demo_runs
    report = a / "report" / "report.html"
    for fig in ("roc", "calibration", "decision_curve", "features"):
        assert (a / "report" / "figures" / f"{fig}.png").stat().st_size > 1000
        assert (a / "report" / "figures" / f"{fig}.csv").exists()
    html = report.read_text(encoding="utf-8")
    assert "E_original_firstorder" in html or "DEM_original_firstorder" in html or "original_firstorder" in html
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary on PATH (install it with: apt-get install -y chromium)")
    res = _render(browser, report, tmp_path)
    assert res["errors"] == [] and res["bad"] == [], res
    assert res["images"] >= 4


def test_report_summary_and_comparison(demo_runs):
    a, _ = demo_runs
    page = (a / "report" / "report.html").read_text(encoding="utf-8")
    assert page.index("<h2>Summary</h2>") < page.index("2. Comparison") < page.index("Participants and events")
    summary = (a / "report" / "summary.txt").read_text(encoding="utf-8")
    assert "The DEM model uses" in summary and "validation AUC" in summary and "sensitivity" in summary
    cmp = pd.read_csv(a / "report" / "tables" / "model_comparison.csv")
    assert {"DEM model", "conventional radiomics"} <= set(cmp.model)
    feats = pd.read_csv(a / "features.csv", nrows=1)
    if "original_size_ShortAxisDiameter" in feats.columns:  # the size class extracted: used automatically
        assert {"node size (short axis)", "10 mm rule"} <= set(cmp.model)
        assert "Compared with node size" in summary
    else:  # not yet: the report says the size model was skipped because the column is absent
        assert "Node size could not be compared" in summary and "original_size_ShortAxisDiameter" in summary
        skipped = pd.read_csv(a / "report" / "tables" / "skipped_models.csv")
        assert {"node size (short axis)", "10 mm rule"} <= set(skipped.model)
        assert "skipped" in page and "original_size_ShortAxisDiameter" in page
