"""Words for the report: readable names of table columns and measures, and the unit of every feature.

The CSV tables keep their machine names (``missing_values_in_model_features``, ``rms D:Chi-sq``); the HTML
report shows :func:`readable` names, and feature axes carry :func:`feature_unit`.
"""
from __future__ import annotations

import re

__all__ = ["READABLE", "readable", "feature_unit", "feature_axis_label", "describe_feature"]

#: machine name -> readable name, for table headers and measure labels in the HTML report
READABLE = {
    # cohorts
    "cohort": "Cohort", "nodes": "Nodes", "patients": "Patients", "events": "Metastatic nodes",
    "non_events": "Non-metastatic nodes", "prevalence": "Prevalence",
    "missing_values_in_model_features": "Missing values in the model's features",
    # performance
    "measure": "Measure", "estimate": "Estimate", "ci_low": "CI lower", "ci_high": "CI upper", "count": "Count",
    "total": "Total", "method": "Method", "clustering": "Clustering",
    # threshold
    "threshold": "Threshold", "sensitivity_training": "Sensitivity (training)",
    "specificity_training": "Specificity (training)", "youden_j": "Youden J", "n_tied_optima": "Tied optima",
    "tie_rule": "Tie rule", "sensitivity": "Sensitivity", "specificity": "Specificity",
    # comparisons
    "test": "Test", "n": "Nodes", "a": "A", "b": "B", "auc_a": "AUC A", "auc_b": "AUC B",
    "difference": "Difference (A - B)", "statistic": "Statistic", "statistic_name": "Statistic name",
    "df": "Degrees of freedom", "p": "p", "p_clustered": "p (patient-clustered)",
    "n_patients": "Patients",
    # calibration summary rows
    "mean_predicted": "Mean predicted risk", "observed_rate": "Observed event rate",
    "calibration_in_the_large": "Calibration-in-the-large", "calibration_slope": "Calibration slope",
    "calibration_intercept": "Calibration intercept (slope free)", "brier": "Brier score",
    "brier_scaled": "Scaled Brier score", "emax": "Emax (max |observed - predicted|)",
    "e90": "E90 (90th percentile |observed - predicted|)", "eavg": "Eavg (mean |observed - predicted|)",
    "spiegelhalter_z": "Spiegelhalter z", "spiegelhalter_p": "Spiegelhalter p",
    "hosmer_lemeshow": "Hosmer-Lemeshow statistic", "hosmer_lemeshow_df": "Hosmer-Lemeshow df",
    "hosmer_lemeshow_p": "Hosmer-Lemeshow p", "n_risk_exactly_0_or_1": "Risks of exactly 0 or 1",
    "rms Dxy": "Somers' Dxy (rms)", "rms C (ROC)": "C statistic (rms)", "rms R2": "Nagelkerke R2 (rms)",
    "rms D": "Discrimination index D (rms)", "rms D:Chi-sq": "Discrimination chi-square (rms)",
    "rms D:p": "Discrimination p (rms)", "rms U": "Unreliability index U (rms)",
    "rms U:Chi-sq": "Unreliability chi-square (rms)", "rms U:p": "Unreliability p (rms)",
    "rms Q": "Quality index Q (rms)", "rms Brier": "Brier score (rms)", "rms Intercept": "Intercept (rms)",
    "rms Slope": "Slope (rms)", "rms Emax": "Emax (rms)", "rms E90": "E90 (rms)", "rms Eavg": "Eavg (rms)",
    "rms S:z": "Spiegelhalter z (rms)", "rms S:p": "Spiegelhalter p (rms)",
    # screening
    "feature": "Feature", "reason": "Not screened because", "n_missing": "Missing",
    "mwu_p": "Mann-Whitney p", "mwu_q": "Mann-Whitney q (BH)", "welch_p": "Welch t p", "welch_q": "Welch t q (BH)",
    "auc": "AUC", "auc_ci_low": "AUC CI lower", "auc_ci_high": "AUC CI upper", "direction": "Direction",
    "higher_in": "Higher in",
    # selection
    "screenable": "Screenable", "passed_p": "Passed p", "passed_q": "Passed q", "passed_auc": "Passed AUC",
    "pruned_by": "Pruned by", "lasso_coef": "LASSO coefficient", "selected": "Selected",
    # model
    "term": "Term", "coefficient": "Coefficient", "odds_ratio": "Odds ratio (per SD)",
    "impute_median": "Imputation median", "scale_mean": "Scaling mean", "scale_sd": "Scaling SD",
    # predictions
    "row": "Row", "outcome": "Outcome", "patient": "Patient", "risk": "Predicted risk",
    "predicted_class": "Called positive",
    # decision curve
    "net_benefit_model": "Net benefit (model)", "net_benefit_all": "Net benefit (treat all)",
    "net_benefit_none": "Net benefit (treat none)", "test_pos_rate": "Called positive (fraction)",
    "tp_rate": "True positives (fraction)", "fp_rate": "False positives (fraction)",
    "net_intervention_avoided": "Net interventions avoided",
    # settings
    "setting": "Setting", "value": "Value",
}
_CLASS_SUFFIX = {"0": "non-metastatic", "1": "metastatic"}


def readable(name) -> str:
    """The readable form of a column or measure name: :data:`READABLE`, else per-class summaries such as
    ``mean_1`` -> 'Mean (metastatic)', else underscores turned into spaces with the first letter capitalised.
    Text that is not a machine name (contains a space and no underscore) is returned unchanged."""
    s = str(name)
    if s in READABLE:
        return READABLE[s]
    m = re.fullmatch(r"([a-z0-9]+)_([01])", s)
    if m:
        base = {"n": "N", "sd": "SD", "q1": "Q1", "q3": "Q3"}.get(m.group(1), m.group(1).capitalize())
        return f"{base} ({_CLASS_SUFFIX[m.group(2)]})"
    if "_" not in s:
        return s
    t = s.replace("_", " ").strip()
    return t[:1].upper() + t[1:]


_IMAGE_UNITS = (("E_original_", "\u2030"), ("DEM_original_", "\u2030"), ("original_", "HU"))
_LINEAR = {"Minimum", "Maximum", "Mean", "Median", "10Percentile", "90Percentile", "Range", "InterquartileRange",
           "MeanAbsoluteDeviation", "RobustMeanAbsoluteDeviation", "RootMeanSquared", "StandardDeviation"}
_SHAPE_UNITS = {"MeshVolume": "mm\u00b3", "VoxelVolume": "mm\u00b3", "SurfaceArea": "mm\u00b2",
                "SurfaceVolumeRatio": "1/mm", "Maximum3DDiameter": "mm", "Maximum2DDiameterSlice": "mm",
                "Maximum2DDiameterColumn": "mm", "Maximum2DDiameterRow": "mm", "MajorAxisLength": "mm",
                "MinorAxisLength": "mm", "LeastAxisLength": "mm"}
_TEXTURE = ("glcm", "glrlm", "glszm", "gldm", "ngtdm")


def feature_unit(name: str) -> str | None:
    """The unit of a feature column named as rlnfast/pyradiomics name it, or None when unknown.

    Image types: ``original_`` = HU, ``E_original_`` = per mille (E is a per-mille stiffness contrast),
    ``DEM_original_`` = per mille (sigma in mm times the gradient of E in per mille/mm). First-order:
    intensity-like features (mean, percentiles, range, deviations, RMS) in the image's unit, Variance and
    Energy in its square, TotalEnergy in its square times mm^3, Entropy in bits, Uniformity, Skewness and
    Kurtosis dimensionless. Fractal: dimensionless. Size: diameters in mm, AxialSlices in slices. Shape:
    mm, mm^2, mm^3 or dimensionless. Texture classes: dimensionless (computed on gray-level bins).
    """
    s = str(name)
    hit = next(((pre, u) for pre, u in _IMAGE_UNITS if s.startswith(pre)), None)
    if hit is None or "_" not in s[len(hit[0]):]:
        return None
    unit = hit[1]
    cls, feat = s[len(hit[0]):].split("_", 1)
    if cls == "firstorder":
        if feat in _LINEAR:
            return unit
        if feat in ("Variance", "Energy"):
            return f"{unit}\u00b2"
        if feat == "TotalEnergy":
            return f"{unit}\u00b2\u00b7mm\u00b3"
        if feat == "Entropy":
            return "bits"
        return "dimensionless"
    if cls == "fractal":
        return "dimensionless"
    if cls == "size":
        return "slices" if feat == "AxialSlices" else "mm"
    if cls == "shape":
        return _SHAPE_UNITS.get(feat, "dimensionless")
    if cls in _TEXTURE:
        return "dimensionless"
    return None


def feature_axis_label(name: str) -> str:
    """``'<feature> [<unit>]'`` for an axis, or the name alone when the unit is unknown."""
    u = feature_unit(name)
    return f"{name} [{u}]" if u else str(name)


def describe_feature(name: str) -> str:
    """A short plain-language description of a feature column (image type, class, feature)."""
    s = str(name)
    hit = next(((pre, d) for pre, d in (("E_original_", "elasticity map E"), ("DEM_original_", "differential "
                "elasticity map DEM"), ("original_", "CT")) if s.startswith(pre)), None)
    if hit is None or "_" not in s[len(hit[0]):]:
        return s
    cls, feat = s[len(hit[0]):].split("_", 1)
    return f"{feat} ({cls}, {hit[1]})"
