"""NumPy reference of the first-order features: pyradiomics' radiomics/firstorder.py, one region at a time.

The code follows pyradiomics 3.x line by line (getBinEdges, binImage, RadiomicsFirstOrder.get*FeatureValue)
on the region's voxel values, so that it can be read side by side with pyradiomics.
"""
from __future__ import annotations

import numpy as np

from ..spec.firstorder import FEATURES, MAX_BIN_EDGES


def bin_edges(values: np.ndarray, bin_width: float = 25.0, bin_count: int | None = None) -> np.ndarray:
    """pyradiomics ``imageoperations.getBinEdges``.

    binCount: ``numpy.histogram(values, binCount)[1]`` with the last edge + 1.
    binWidth: ``numpy.arange(min - min % w, max + 2 w, w)``; a single edge becomes ``[e - .5, e + .5]``.
    ``values`` keeps its dtype (a float32 image gives float32 arithmetic, as in pyradiomics).
    """
    if bin_count is not None:
        if int(bin_count) + 1 > MAX_BIN_EDGES:
            raise ValueError(f"binCount={bin_count}: more than {MAX_BIN_EDGES} bin edges")
        with np.errstate(over="ignore", invalid="ignore"):
            edges = np.histogram(values, int(bin_count))[1]   # ValueError when edges do not increase
        if not np.all(np.isfinite(edges)):
            raise ValueError(f"values in [{values.min()}, {values.max()}]: binCount edges are not finite")
        edges[-1] += 1
        return edges
    minimum = values.min()
    maximum = values.max()
    with np.errstate(over="ignore", invalid="ignore"):
        low = minimum - (minimum % bin_width)
        high = maximum + 2 * bin_width
        length = np.ceil((high - low) / bin_width)   # numpy.arange's length, in the values' dtype
        step = (low + bin_width) - low               # numpy.arange's step (its second edge minus its first)
    # Checked before numpy.arange allocates: a length beyond MAX_BIN_EDGES (or NaN, or past int64) or a step
    # that vanishes at this magnitude cannot be binned as pyradiomics bins.
    if not (length <= MAX_BIN_EDGES) or not (step > 0) or not np.isfinite(step) or not np.isfinite(high):
        raise ValueError(f"values in [{minimum}, {maximum}] cannot be binned exactly with binWidth={bin_width}: "
                         f"{length} bin edges (at most {MAX_BIN_EDGES}), edge step {step}")
    edges = np.arange(low, high, bin_width)
    if len(edges) == 1:
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    return edges


def firstorder_one(values: np.ndarray, *, bin_width: float = 25.0, bin_count: int | None = None,
                   voxel_array_shift: float = 0.0, voxel_volume: float = 1.0) -> np.ndarray:
    """All first-order features (``FEATURES`` order) of one region's voxel values (any dtype)."""
    values = np.asarray(values)
    out = np.full(len(FEATURES), np.nan)
    if values.size == 0:
        return out
    if not np.all(np.isfinite(values)):
        raise ValueError(f"values: {int(np.count_nonzero(~np.isfinite(values)))} NaN/inf value(s); expected finite")
    x = values.astype("float").reshape((1, -1))   # pyradiomics targetVoxelArray
    edges = bin_edges(values, bin_width, bin_count)
    discretized = np.digitize(values, edges)
    _, p_i = np.unique(discretized, return_counts=True)
    p_i = p_i.reshape((1, -1)).astype("float")
    p_i = p_i / p_i.sum(1, keepdims=True)
    eps = np.spacing(1)

    energy = np.nansum((x + voxel_array_shift) ** 2, 1)
    p10 = np.nanpercentile(x, 10, axis=1)
    p90 = np.nanpercentile(x, 90, axis=1)
    mean = np.nanmean(x, 1, keepdims=True)

    def moment(k):
        return np.nanmean(np.power(x - mean, k), 1)

    m2, m3, m4 = moment(2), moment(3), moment(4)
    m2s = m2.copy()
    m2s[m2s == 0] = 1   # flat region: pyradiomics returns 0 for skewness and kurtosis
    r = x.copy()
    msk = ~np.isnan(r)
    msk[msk] = ((r - p10[:, None])[msk] < 0) | ((r - p90[:, None])[msk] > 0)
    r[msk] = np.nan
    f = {
        "Energy": energy,
        "TotalEnergy": voxel_volume * energy,
        "Entropy": -1.0 * np.sum(p_i * np.log2(p_i + eps), 1),
        "Minimum": np.nanmin(x, 1),
        "10Percentile": p10,
        "90Percentile": p90,
        "Maximum": np.nanmax(x, 1),
        "Mean": np.nanmean(x, 1),
        "Median": np.nanmedian(x, 1),
        "InterquartileRange": np.nanpercentile(x, 75, 1) - np.nanpercentile(x, 25, 1),
        "Range": np.nanmax(x, 1) - np.nanmin(x, 1),
        "MeanAbsoluteDeviation": np.nanmean(np.absolute(x - mean), 1),
        "RobustMeanAbsoluteDeviation": np.nanmean(np.absolute(r - np.nanmean(r, 1, keepdims=True)), 1),
        "RootMeanSquared": np.sqrt(energy / np.sum(~np.isnan(x), 1).astype("float")),
        "StandardDeviation": np.nanstd(x, axis=1),
        "Skewness": m3 / m2s ** 1.5,
        "Kurtosis": m4 / m2s ** 2,
        "Variance": np.nanstd(x, 1) ** 2,
        "Uniformity": np.nansum(p_i ** 2, 1),
    }
    for i, name in enumerate(FEATURES):
        out[i] = f[name][0]
    return out


def firstorder(values, offsets, *, bin_width=25.0, bin_count=None, voxel_array_shift=0.0, voxel_volume=1.0,
               value_dtype=None) -> np.ndarray:
    """Reference of :func:`rlnfast.ops.firstorder.firstorder`: a Python loop over the regions.

    ``value_dtype`` is the image's dtype: the ragged values are float64, and pyradiomics bins in the
    image's own dtype (it matters for float32 images with binCount).
    """
    values = np.asarray(values)
    offsets = np.asarray(offsets, dtype=np.int64)
    n = len(offsets) - 1
    out = np.empty((n, len(FEATURES)))
    for r in range(n):
        v = values[offsets[r]:offsets[r + 1]]
        if value_dtype is not None:
            v = v.astype(value_dtype)
        out[r] = firstorder_one(v, bin_width=bin_width, bin_count=bin_count,
                                voxel_array_shift=voxel_array_shift, voxel_volume=voxel_volume)
    return out
