"""The first-order features' specification, shared by the ops (rlnfast.ops.firstorder) and the NumPy reference
(rlnfast.reference.firstorder): names in the kernels' column order, pyradiomics' default set and each formula.
Imports nothing from ops/ or reference/."""
from __future__ import annotations

# Column order of every backend's output (csrc/common/firstorder_math.h enum Feature).
FEATURES = (
    "Energy", "TotalEnergy", "Entropy", "Minimum", "10Percentile", "90Percentile", "Maximum", "Mean",
    "Median", "InterquartileRange", "Range", "MeanAbsoluteDeviation", "RobustMeanAbsoluteDeviation",
    "RootMeanSquared", "StandardDeviation", "Skewness", "Kurtosis", "Variance", "Uniformity",
)
# Most bin edges a region may have (csrc/common/firstorder_math.h RLNFAST_FO_MAX_EDGES): pyradiomics allocates
# them all. A region that needs more, or whose edges do not increase at the values' precision (an edge step
# of 0 next to 1e18, a float32 region near 2^24 with binCount), cannot be binned as pyradiomics bins it:
# every backend raises ValueError saying so, never a guessed histogram.
MAX_BIN_EDGES = 1 << 24

# pyradiomics' default set (StandardDeviation is deprecated there and computed only on request).
DEFAULT_FEATURES = tuple(f for f in FEATURES if f != "StandardDeviation")

# The specification of each feature: formula, units, the IBSI name where one exists.
FEATURE_DOCS = {
    "Energy": "sum (X + c)^2. Units: intensity^2. IBSI 'energy' (N8CA) with c = 0.",
    "TotalEnergy": "V_voxel * sum (X + c)^2, V_voxel = product of the spacing in mm^3.",
    "Entropy": "-sum_i P(i) log2(P(i) + eps). IBSI intensity-histogram entropy (TLU2).",
    "Minimum": "min X. IBSI 1GSF.",
    "10Percentile": "10th percentile of X (numpy.percentile, linear). IBSI QG58.",
    "90Percentile": "90th percentile of X (numpy.percentile, linear). IBSI 8DWT.",
    "Maximum": "max X. IBSI 84IY.",
    "Mean": "(1/N) sum X. IBSI Q4LE.",
    "Median": "median of X. IBSI Y12H.",
    "InterquartileRange": "P75(X) - P25(X) (numpy.percentile, linear). IBSI SALO.",
    "Range": "max X - min X. IBSI 2OJQ.",
    "MeanAbsoluteDeviation": "(1/N) sum |X - mean X|. IBSI 4FUA.",
    "RobustMeanAbsoluteDeviation": "mean |X' - mean X'| over X' = the voxels with P10 <= X <= P90. IBSI 1128.",
    "RootMeanSquared": "sqrt((1/N) sum (X + c)^2). IBSI 5ZWQ with c = 0.",
    "StandardDeviation": "sqrt((1/N) sum (X - mean X)^2) (population). Not in the default set.",
    "Skewness": "m3 / m2^1.5 with m_k = (1/N) sum (X - mean X)^k; 0 for a flat region. IBSI KE2A.",
    "Kurtosis": "m4 / m2^2; 0 for a flat region. Not excess kurtosis: IBSI IPH6 is 3 lower.",
    "Variance": "m2 = (1/N) sum (X - mean X)^2 (computed as StandardDeviation^2, as pyradiomics). IBSI ECT3.",
    "Uniformity": "sum_i P(i)^2. IBSI intensity-histogram uniformity (BJ5W).",
}
