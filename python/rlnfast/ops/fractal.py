"""Fractal features of every region at once, on any backend: box counts and DBC counts by the compiled,
CuPy or NumPy kernels, the fits, and the features (definitions, geometry, box sizes and the exact
integer arithmetic: rlnfast.spec.fractal). Box sizes: ``min_box_size`` (setting ``fractalMinBoxSize``) or
``box_sizes`` (``fractalBoxSizes``); DBC grey levels: ``grey_levels`` (``fractalGreyLevels``)."""
from __future__ import annotations

import numpy as np

from .. import _backends
from ..spec.fractal import (FEATURE_DOCS, FEATURES, IMAGE_FEATURES, N_LOCAL, REGION_FEATURES, UNITS_PER_MM,  # noqa: F401
                            BoxPlan, Crops, FractalResult, crops_from_masks, dbc_reasons, check_grey_levels,
                            intensity_range, local_reasons, pack_values, plan_box_sizes, segment_sums, size_reasons,
                            to_units)


def crops_from_label_map(label_map, labels, bbox, spacing_zyx) -> Crops:
    """Crops of regions ``label_map == labels[r]`` on their inclusive bounding boxes (z0,y0,x0,z1,y1,x1),
    packed in one C++ pass."""
    lm = np.ascontiguousarray(label_map)
    if lm.dtype == bool:
        lm = lm.view(np.uint8)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    bbox = np.ascontiguousarray(bbox, dtype=np.int64).reshape(-1, 6)
    mask, offsets, dims, count = _backends.core().cpu.fractal_crops(lm, labels, bbox)
    return Crops(mask, offsets, dims, to_units(spacing_zyx, "spacing"), count)


# ---- counts on a backend ---------------------------------------------------------------------------------

def _scatter(plan: BoxPlan, per_pair, fill=-1) -> np.ndarray:
    out = np.full(plan.sizes.shape, fill, dtype=np.asarray(per_pair).dtype if len(per_pair) else np.int64)
    out[plan.pair_region, plan.pair_k] = per_pair
    return out


def box_counts(crops: Crops, plan: BoxPlan, backend="auto") -> dict:
    """Per region and size ([n, K] int64, -1 where there is no size): ``n_mask`` (boxes intersecting the
    region), ``n_surface`` (boxes intersecting boundary voxels), ``sum_m2`` (sum of M^2 over grid boxes,
    M = region voxel centres per box) and ``n_grid`` (boxes of the grid covering the bounding box)."""
    name = _backends.resolve(backend)
    args = (crops.mask, crops.offsets, crops.dims, crops.spacing_units, plan.pair_region, plan.pair_size)
    if name == "numpy":
        from ..reference.fractal import box_counts_pairs

        res = box_counts_pairs(*args)
    elif name == "cpu":
        res = _backends.core().cpu.fractal_boxes(*args)
    elif name == "cuda":
        res = _backends.core().cuda.fractal_boxes(*args)
    elif name == "cupy":
        from .._cupy.fractal import fractal_boxes

        res = fractal_boxes(*args)
    else:  # pragma: no cover
        raise AssertionError(name)
    keys = ("n_mask", "n_surface", "sum_m2", "n_grid")
    return {k: _scatter(plan, np.asarray(v, np.int64)) for k, v in zip(keys, res)}


def dbc_counts(crops: Crops, values: np.ndarray, plan: BoxPlan, grey_levels: int = 256, backend="auto"):
    """(n_dbc [n, K] int64 (-1 where no size), vmin [n], vmax [n]): DBC counts N(s) of the intensities
    ``values`` (ragged, in the crops' layout; only region voxels are read and must be finite)."""
    name = _backends.resolve(backend)
    g = check_grey_levels(grey_levels)
    from ..io import float64_values

    v = float64_values(values, "values")   # the one dtype rule
    if v.shape != crops.mask.shape:
        raise ValueError(f"values: {v.shape[0]} entries, expected one per crop voxel ({crops.mask.shape[0]})")
    args = (crops.mask, v, crops.offsets, crops.dims, crops.spacing_units, plan.pair_region, plan.pair_size, g)
    if name == "numpy":
        from ..reference.fractal import dbc_counts_pairs

        n, lo, hi = dbc_counts_pairs(*args)
    elif name == "cpu":
        n, lo, hi = _backends.core().cpu.fractal_dbc(*args)
    elif name == "cuda":
        n, lo, hi = _backends.core().cuda.fractal_dbc(*args)
    elif name == "cupy":
        from .._cupy.fractal import fractal_dbc

        n, lo, hi = fractal_dbc(*args)
    else:  # pragma: no cover
        raise AssertionError(name)
    return _scatter(plan, np.asarray(n, np.int64)), np.asarray(lo, np.float64), np.asarray(hi, np.float64)


# ---- fits ------------------------------------------------------------------------------------------------

def fit_dimension(sizes_mm: np.ndarray, counts: np.ndarray, n_sizes: np.ndarray):
    """(slope, r2) of the OLS fit of ln N on ln(1/s) for every row (first n_sizes[r] columns), vectorised.
    NaN where fewer than 3 sizes or a count is not positive; r2 is NaN when ln N is constant."""
    n, k = counts.shape
    valid = np.arange(k)[None, :] < n_sizes[:, None]
    ok = (n_sizes >= 3) & np.all(~valid | (counts > 0), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(valid, -np.log(np.where(valid, sizes_mm, 1.0)), 0.0)
        y = np.where(valid, np.log(np.where(valid & (counts > 0), counts, 1).astype(np.float64)), 0.0)
        m = np.maximum(n_sizes, 1).astype(np.float64)
        xm = x.sum(1) / m
        ym = y.sum(1) / m
        dx = np.where(valid, x - xm[:, None], 0.0)
        dy = np.where(valid, y - ym[:, None], 0.0)
        sxx = (dx * dx).sum(1)
        sxy = (dx * dy).sum(1)
        syy = (dy * dy).sum(1)
        slope = sxy / sxx
        # constant counts (ln N constant): R^2 is 0/0, NaN; compared on the counts, not on a rounded syy
        first = counts[np.arange(n), 0] if k else np.zeros(n, counts.dtype)
        const = np.all(~valid | (counts == first[:, None]), axis=1)
        r2 = np.where((syy > 0) & ~const, 1.0 - (syy - slope * sxy) / syy, np.nan)
    return np.where(ok, slope, np.nan), np.where(ok, r2, np.nan)


def local_dimensions(sizes_mm, counts, n_sizes):
    """[n, 3]: ln(N(s_k)/N(s_{k+1})) / ln(s_{k+1}/s_k), NaN where s_{k+1} is missing or < 3 sizes."""
    n = len(n_sizes)
    out = np.full((n, N_LOCAL), np.nan)
    for k in range(min(N_LOCAL, max(sizes_mm.shape[1] - 1, 0))):
        ok = (n_sizes >= 3) & (n_sizes > k + 1) & (counts[:, k] > 0) & (counts[:, k + 1] > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.log(counts[:, k] / counts[:, k + 1]) / np.log(sizes_mm[:, k + 1] / sizes_mm[:, k])
        out[:, k] = np.where(ok, v, np.nan)
    return out


def region_features(crops: Crops, *, min_box_size=None, box_sizes=None, backend="auto") -> FractalResult:
    """MaskFD, SurfaceFD, Lacunarity and MaskFD_local_0..2 of every region (see ``FEATURE_DOCS``)."""
    name = _backends.resolve(backend)
    if name == "numpy":
        from ..reference.fractal import region_features as ref

        return ref(crops, min_box_size=min_box_size, box_sizes=box_sizes)
    plan = plan_box_sizes(crops, min_box_size, box_sizes)
    c = box_counts(crops, plan, name)
    sizes = plan.sizes_mm
    feats = {}
    feats["MaskFD"], r2m = fit_dimension(sizes, c["n_mask"], plan.n_sizes)
    feats["SurfaceFD"], r2s = fit_dimension(sizes, c["n_surface"], plan.n_sizes)
    valid = c["n_grid"] > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(valid, c["n_grid"] * c["sum_m2"].astype(np.float64)
                       / (crops.count.astype(np.float64)[:, None] ** 2), np.nan)
        lac = np.where(plan.n_sizes >= 3, np.nansum(np.where(valid, lam, 0.0), 1) / np.maximum(plan.n_sizes, 1), np.nan)
    feats["Lacunarity"] = lac
    loc = local_dimensions(sizes, c["n_mask"], plan.n_sizes)
    for k in range(N_LOCAL):
        feats[f"MaskFD_local_{k}"] = loc[:, k]
    counts = {"MaskFD": c["n_mask"], "SurfaceFD": c["n_surface"], "Lacunarity_SumM2": c["sum_m2"],
              "Lacunarity_GridBoxes": c["n_grid"]}
    reason = size_reasons(crops, plan, min_box_size, box_sizes)
    return FractalResult(sizes, plan.n_sizes, counts, feats, {"MaskFD": r2m, "SurfaceFD": r2s}, lam, reason,
                         feature_reasons=local_reasons(crops, plan, min_box_size, box_sizes, reason))


def _finite_values(crops: Crops, values):
    from ..io import float64_values

    v = float64_values(values, "values")   # the one dtype rule: exact in float64 or refused by name
    if v.shape != crops.mask.shape:
        raise ValueError(f"values: {v.shape[0]} entries, expected one per crop voxel ({crops.mask.shape[0]})")
    finite = np.isfinite(v)
    if finite.all():
        return v, np.zeros(len(crops), np.int64)
    nbad = segment_sums((crops.mask > 0) & ~finite, crops.offsets)
    return np.where(finite, v, 0.0), nbad


def dbc_features(crops: Crops, values, *, min_box_size=None, box_sizes=None, grey_levels=256,
                 backend="auto") -> FractalResult:
    """DBCFD of every region for one image type's intensities ``values`` (ragged, crops' layout)."""
    name = _backends.resolve(backend)
    if name == "numpy":
        from ..reference.fractal import dbc_features as ref

        return ref(crops, values, min_box_size=min_box_size, box_sizes=box_sizes, grey_levels=grey_levels)
    v, nbad = _finite_values(crops, values)
    plan = plan_box_sizes(crops, min_box_size, box_sizes)
    reason = size_reasons(crops, plan, min_box_size, box_sizes)
    if nbad.any():   # leave those regions out of the kernels
        keep = nbad[plan.pair_region] == 0
        plan = BoxPlan(plan.sizes, plan.n_sizes, plan.extent, plan.pair_region[keep], plan.pair_k[keep],
                       plan.pair_size[keep])
    n_dbc, vmin, vmax = dbc_counts(crops, v, plan, grey_levels, name)
    sizes = plan.sizes_mm
    dim, r2 = fit_dimension(sizes, n_dbc, plan.n_sizes)
    dim = np.where(nbad > 0, np.nan, dim)
    return FractalResult(sizes, plan.n_sizes, {"DBCFD": n_dbc}, {"DBCFD": dim}, {"DBCFD": r2}, None,
                         dbc_reasons(reason, nbad), {"DBCFD_IntensityRange": intensity_range(vmin, vmax, nbad)})
