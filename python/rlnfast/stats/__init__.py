"""Statistics of a node-level radiomics study: screening, selection, a classifier, validation, calibration, DCA.

Each step uses the well-kept library that does it (scipy for the tests, statsmodels for Benjamini-Hochberg,
Wilson intervals and the logistic recalibration, scikit-learn for LASSO and the classifier, ``dcurves``
for net benefit); the package writes only what none of them provides. One module per concern:
:mod:`.checks` (input checks), :mod:`.roc` (AUC, DeLong, ROC, Youden, measures at a threshold),
:mod:`.bootstrap`, :mod:`.selection` (screening, LASSO, selection), :mod:`.model`, :mod:`.calibration`,
:mod:`.decision` (decision curves), :mod:`.clustered` (patient-clustered AUC and proportions),
:mod:`.compare` (named feature sets, the size rule, paired tests between models), :mod:`.labels` (readable
names and feature units for the report) and :mod:`.analyze` (:func:`analyze`, the whole study). Beside them,
:mod:`.plots` and :mod:`.report` (:func:`rlnfast.stats.report.write_report`) draw and write the results;
they import the computation modules, and only :func:`analyze` imports them back (lazily).
"""
from __future__ import annotations

from .analyze import (AnalysisResult, IDENTIFIER_COLUMNS, analyze, cohort_metrics, default_features,
                      software_versions, validate_table)
from .bootstrap import BootstrapResult, bootstrap_auc, bootstrap_weights, roc_confidence_band
from .calibration import (CalibrationResult, calibration_bins, calibration_ci, calibration_in_the_large, calibration_smooth,
                          calibration_summary, hosmer_lemeshow, spiegelhalter, val_prob)
from .checks import check_binary
from .clustered import (ClusteredAUCResult, ClusteredPairedResult, clustered_auc_cov, clustered_proportion_ci,
                        obuchowski_auc, obuchowski_paired_test)
from .compare import (DEFAULT_FEATURE_SETS, SIZE_COLUMN, SIZE_RULE_MM, ModelResult, benefit_ranges, feature_table,
                      match_features, paired_tests, parse_feature_set)
from .decision import DEFAULT_DCA_REPORT_RANGE, DEFAULT_DCA_THRESHOLDS, decision_curve
from .model import default_model, fit_model, model_table, predict_risk
from .roc import (AUCResult, PairedDeLongResult, UnpairedDeLongResult, YoudenResult, delong_auc,
                  delong_paired_test, delong_unpaired_test, roc_points, threshold_metrics, wilson_ci,
                  youden_threshold)
from .selection import LassoResult, Selection, lasso_select, screen_features, select_features

__all__ = [
    "AUCResult", "PairedDeLongResult", "UnpairedDeLongResult", "YoudenResult", "BootstrapResult",
    "CalibrationResult", "LassoResult", "Selection", "AnalysisResult",
    "check_binary", "delong_auc", "delong_paired_test", "delong_unpaired_test", "roc_points",
    "youden_threshold", "threshold_metrics", "wilson_ci", "bootstrap_weights", "bootstrap_auc",
    "roc_confidence_band", "screen_features", "select_features", "lasso_select", "default_model",
    "fit_model", "predict_risk", "model_table", "val_prob", "hosmer_lemeshow", "spiegelhalter",
    "calibration_in_the_large", "calibration_bins", "calibration_smooth", "calibration_summary",
    "decision_curve", "cohort_metrics", "software_versions", "validate_table", "analyze",
    "default_features", "IDENTIFIER_COLUMNS", "DEFAULT_DCA_THRESHOLDS", "DEFAULT_DCA_REPORT_RANGE",
    "calibration_ci", "ClusteredAUCResult", "ClusteredPairedResult", "clustered_auc_cov", "clustered_proportion_ci",
    "obuchowski_auc", "obuchowski_paired_test", "DEFAULT_FEATURE_SETS", "SIZE_COLUMN", "SIZE_RULE_MM", "ModelResult",
    "benefit_ranges", "feature_table", "match_features", "paired_tests", "parse_feature_set",
]
