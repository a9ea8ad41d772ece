"""NumPy reference of the fractal features (features.md, "Fractal features"): one region at a time, written
to be read beside the definitions. The fast backends are tested against these functions.

Lengths are whole units of 1e-6 mm (``UNITS_PER_MM``): the voxel spacing d and the box size s are rounded
to that grid once, so that every voxel/box test below is an exact integer comparison.

Along one axis, voxel i spans [i*d, (i+1)*d) and box j spans [j*s, (j+1)*s) (grid anchored at the
bounding box's lower corner). They intersect iff j*s < (i+1)*d and i*d < (j+1)*s, i.e.
    floor(i*d / s) <= j <= floor(((i+1)*d - 1) / s)          (integers: ceil(x/s) - 1 = floor((x-1)/s))
The centre (i + 1/2)*d lies in box floor((2i+1)*d / (2s)). The grid has ceil(n*d/s) boxes along an axis of
n voxels.
"""
from __future__ import annotations

import numpy as np

from ..spec.fractal import (N_LOCAL, UNITS_PER_MM, BoxPlan, Crops, FractalResult, dbc_reasons, check_grey_levels,
                            intensity_range, local_reasons, plan_box_sizes, segment_sums, size_reasons, to_units)


# ---- box sizes -------------------------------------------------------------------------------------------

def box_sizes_one(dims, spacing_units, min_box_size=None, box_sizes=None) -> list:
    """Box sizes (units) of one region of bounding-box shape ``dims``:
    s_k = s_min * 2^k while s_k <= L, L = max_a dims[a] * d[a]; s_min = min_box_size (mm) or min(d).
    An explicit ``box_sizes`` list (mm) is used as given (sorted, duplicates removed)."""
    if min(dims) == 0:
        return []
    if box_sizes is not None:
        return sorted({int(s) for s in to_units(np.atleast_1d(box_sizes), "fractalBoxSizes")})
    L = max(int(n) * int(d) for n, d in zip(dims, spacing_units))
    s = int(min(spacing_units)) if min_box_size is None else int(to_units(min_box_size, "fractalMinBoxSize"))
    if s <= 0:   # a loop bound checked before the loop runs (s doubles, so s > 0 ends it)
        raise ValueError(f"box size {s} units: expected > 0")
    out = []
    while s <= L:
        out.append(s)
        s *= 2
    return out


# ---- counts of one region --------------------------------------------------------------------------------

def _axis(n, d, s):
    i = np.arange(n, dtype=np.int64)
    lo = (i * d) // s
    hi = ((i + 1) * d - 1) // s
    centre = ((2 * i + 1) * d) // (2 * s)
    grid = -(-(n * d) // s)
    return lo, hi, centre, int(grid)


def boundary_voxels(mask: np.ndarray) -> np.ndarray:
    """Region voxels with at least one of their 6 neighbours outside the region (outside the array counts as
    outside)."""
    p = np.pad(mask, 1, constant_values=False)
    c = p[1:-1, 1:-1, 1:-1]
    inner = (p[:-2, 1:-1, 1:-1] & p[2:, 1:-1, 1:-1] & p[1:-1, :-2, 1:-1] & p[1:-1, 2:, 1:-1]
             & p[1:-1, 1:-1, :-2] & p[1:-1, 1:-1, 2:])
    return c & ~inner


def boxes_hit(mask: np.ndarray, spacing_units, s: int) -> np.ndarray:
    """Boolean grid of the boxes of size s that intersect the union of the cuboids of ``mask``'s voxels."""
    ax = [_axis(mask.shape[a], int(spacing_units[a]), s) for a in range(3)]
    hit = np.zeros(tuple(a[3] for a in ax), dtype=bool)
    idx = np.nonzero(mask)
    lo = [ax[a][0][idx[a]] for a in range(3)]
    hi = [ax[a][1][idx[a]] for a in range(3)]
    span = [int((ax[a][1] - ax[a][0]).max()) + 1 if mask.shape[a] else 1 for a in range(3)]
    for dz in range(span[0]):
        for dy in range(span[1]):
            for dx in range(span[2]):
                b = (lo[0] + dz, lo[1] + dy, lo[2] + dx)
                ok = (b[0] <= hi[0]) & (b[1] <= hi[1]) & (b[2] <= hi[2])
                hit[b[0][ok], b[1][ok], b[2][ok]] = True
    return hit


def centre_boxes(mask: np.ndarray, spacing_units, s: int):
    """(linear box index of every region voxel centre, grid shape)."""
    ax = [_axis(mask.shape[a], int(spacing_units[a]), s) for a in range(3)]
    idx = np.nonzero(mask)
    grid = tuple(a[3] for a in ax)
    b = np.ravel_multi_index(tuple(ax[a][2][idx[a]] for a in range(3)), grid)
    return b, grid


def box_counts_one(mask: np.ndarray, spacing_units, s: int):
    """(N_mask, N_surface, sum_b M_b^2, number of grid boxes) of one region crop for box size s (units)."""
    mask = np.asarray(mask, dtype=bool)
    n_mask = int(boxes_hit(mask, spacing_units, s).sum())
    n_surface = int(boxes_hit(boundary_voxels(mask), spacing_units, s).sum())
    b, grid = centre_boxes(mask, spacing_units, s)
    m = np.bincount(b, minlength=int(np.prod(grid))).astype(np.int64)
    return n_mask, n_surface, int((m * m).sum()), int(np.prod(grid))


def dbc_count_one(mask: np.ndarray, values: np.ndarray, spacing_units, s: int, grey_levels: int = 256):
    """DBC N(s) of one region: g = ((I - min) * (G-1)) / (max - min) (0 when constant), h = (s * G) / L,
    n_b = floor(gmax_b / h) - floor(gmin_b / h) + 1 over the boxes b holding region voxel centres."""
    mask = np.asarray(mask, dtype=bool)
    v = np.asarray(values, dtype=np.float64)[mask]
    vmin, vmax = v.min(), v.max()
    g = ((v - vmin) * float(grey_levels - 1)) / (vmax - vmin) if vmax > vmin else np.zeros_like(v)
    L = max(int(n) * int(d) for n, d in zip(mask.shape, spacing_units))
    h = (float(s) * float(grey_levels)) / float(L)
    q = np.floor(g / h).astype(np.int64)
    b, grid = centre_boxes(mask, spacing_units, s)
    nb = int(np.prod(grid))
    qmin = np.full(nb, np.iinfo(np.int64).max)
    qmax = np.full(nb, -1, dtype=np.int64)
    np.minimum.at(qmin, b, q)
    np.maximum.at(qmax, b, q)
    occ = qmax >= 0
    return int((qmax[occ] - qmin[occ] + 1).sum())


# ---- batches of pairs (the numpy backend of ops.fractal.box_counts / dbc_counts) ----------------------------

def _crop(mask, offsets, dims, r):
    return np.asarray(mask[offsets[r]:offsets[r + 1]], dtype=bool).reshape(tuple(int(x) for x in dims[r]))


def box_counts_pairs(mask, offsets, dims, spacing_units, pair_region, pair_size):
    """Reference of cpu.fractal_boxes: a Python loop over the (region, size) pairs."""
    out = np.zeros((4, len(pair_region)), dtype=np.int64)
    for p, (r, s) in enumerate(zip(pair_region, pair_size)):
        out[:, p] = box_counts_one(_crop(mask, offsets, dims, r), spacing_units, int(s))
    return tuple(out)


def dbc_counts_pairs(mask, values, offsets, dims, spacing_units, pair_region, pair_size, grey_levels):
    """Reference of cpu.fractal_dbc."""
    n = len(offsets) - 1
    vmin = np.full(n, np.nan)
    vmax = np.full(n, np.nan)
    for r in range(n):
        v = np.asarray(values[offsets[r]:offsets[r + 1]])[np.asarray(mask[offsets[r]:offsets[r + 1]], bool)]
        if v.size:
            vmin[r], vmax[r] = v.min(), v.max()
    out = np.zeros(len(pair_region), dtype=np.int64)
    for p, (r, s) in enumerate(zip(pair_region, pair_size)):
        m = _crop(mask, offsets, dims, r)
        out[p] = dbc_count_one(m, np.asarray(values[offsets[r]:offsets[r + 1]]).reshape(m.shape), spacing_units,
                               int(s), grey_levels)
    return out, vmin, vmax


# ---- fits and features of one region ---------------------------------------------------------------------

def fit_one(sizes_mm, counts):
    """(slope, R^2) of the least-squares line ln N = a + D ln(1/s) (numpy.polyfit); NaN for < 3 sizes."""
    s = np.asarray(sizes_mm, dtype=np.float64)
    n = np.asarray(counts, dtype=np.float64)
    if len(s) < 3 or np.any(n <= 0):
        return np.nan, np.nan
    x, y = np.log(1.0 / s), np.log(n)
    slope, icpt = np.polyfit(x, y, 1)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    ss_res = float(((y - (icpt + slope * x)) ** 2).sum())
    if ss_tot <= 0 or np.all(n == n[0]):   # constant counts: R^2 is 0/0 (NaN), not a rounding residue
        return float(slope), np.nan
    return float(slope), 1.0 - ss_res / ss_tot


def region_features_one(mask, spacing_units, min_box_size=None, box_sizes=None) -> dict:
    """Every region-only fractal feature of one region crop, with its sizes, counts and R^2."""
    mask = np.asarray(mask, dtype=bool)
    sizes = box_sizes_one(mask.shape, spacing_units, min_box_size, box_sizes) if mask.any() else []
    rows = [box_counts_one(mask, spacing_units, s) for s in sizes]
    s_mm = np.array(sizes, dtype=np.float64) / UNITS_PER_MM
    nm = np.array([r[0] for r in rows], np.int64)
    ns = np.array([r[1] for r in rows], np.int64)
    m2 = np.array([r[2] for r in rows], np.int64)
    ng = np.array([r[3] for r in rows], np.int64)
    count = int(mask.sum())
    # Lambda(s) = E[M^2] / E[M]^2 with E over the ng grid boxes: (sum M^2 / ng) / (count / ng)^2
    lam = (m2 / ng) / (count / ng) ** 2 if len(sizes) else np.zeros(0)
    f = {}
    f["MaskFD"], r2m = fit_one(s_mm, nm)
    f["SurfaceFD"], r2s = fit_one(s_mm, ns)
    f["Lacunarity"] = float(lam.mean()) if len(sizes) >= 3 else np.nan
    for k in range(N_LOCAL):
        f[f"MaskFD_local_{k}"] = (float(np.log(nm[k] / nm[k + 1]) / np.log(s_mm[k + 1] / s_mm[k]))
                                  if len(sizes) >= 3 and k + 1 < len(sizes) else np.nan)
    return {"sizes": sizes, "n_mask": nm, "n_surface": ns, "sum_m2": m2, "n_grid": ng, "lacunarity": lam,
            "features": f, "r2": {"MaskFD": r2m, "SurfaceFD": r2s}}


def _pad(rows, K, fill, dtype):
    out = np.full((len(rows), K), fill, dtype=dtype)
    for r, v in enumerate(rows):
        out[r, :len(v)] = v
    return out


def region_features(crops: Crops, *, min_box_size=None, box_sizes=None) -> FractalResult:
    """Reference of :func:`rlnfast.ops.fractal.region_features`: a Python loop over the regions."""
    n = len(crops)
    res = [region_features_one(crops.crop(r), crops.spacing_units, min_box_size, box_sizes) for r in range(n)]
    K = max([len(x["sizes"]) for x in res] + [1])
    n_sizes = np.array([len(x["sizes"]) for x in res], np.int64)
    sizes = _pad([np.array(x["sizes"]) / UNITS_PER_MM for x in res], K, np.nan, np.float64)
    counts = {"MaskFD": _pad([x["n_mask"] for x in res], K, -1, np.int64),
              "SurfaceFD": _pad([x["n_surface"] for x in res], K, -1, np.int64),
              "Lacunarity_SumM2": _pad([x["sum_m2"] for x in res], K, -1, np.int64),
              "Lacunarity_GridBoxes": _pad([x["n_grid"] for x in res], K, -1, np.int64)}
    feats = {k: np.array([x["features"][k] for x in res], np.float64) for k in res[0]["features"]} if n else {}
    r2 = {k: np.array([x["r2"][k] for x in res], np.float64) for k in ("MaskFD", "SurfaceFD")} if n else {}
    lam = _pad([x["lacunarity"] for x in res], K, np.nan, np.float64)
    plan = plan_box_sizes(crops, min_box_size, box_sizes)
    reason = size_reasons(crops, plan, min_box_size, box_sizes)
    return FractalResult(sizes, n_sizes, counts, feats, r2, lam, reason,
                         feature_reasons=local_reasons(crops, plan, min_box_size, box_sizes, reason))


def dbc_features_one(mask, values, spacing_units, min_box_size=None, box_sizes=None, grey_levels=256) -> dict:
    """DBCFD of one region crop (``values`` on the same crop; region voxels must be finite), with its sizes,
    counts, R^2 and intensity range."""
    mask = np.asarray(mask, dtype=bool)
    values = np.asarray(values, dtype=np.float64)
    sizes = box_sizes_one(mask.shape, spacing_units, min_box_size, box_sizes) if mask.any() else []
    c = [dbc_count_one(mask, values, spacing_units, s, grey_levels) for s in sizes]
    d, r2 = fit_one(np.array(sizes, dtype=np.float64) / UNITS_PER_MM, c)
    v = values[mask]
    rng = (float(v.min()), float(v.max())) if v.size else (np.nan, np.nan)
    return {"sizes": sizes, "n_dbc": np.array(c, np.int64), "DBCFD": d, "r2": r2, "range": rng}


def dbc_features(crops: Crops, values, *, min_box_size=None, box_sizes=None, grey_levels=256) -> FractalResult:
    """Reference of :func:`rlnfast.ops.fractal.dbc_features`: a Python loop over the regions."""
    g = check_grey_levels(grey_levels)
    values = np.asarray(values, dtype=np.float64)
    n = len(crops)
    nbad = segment_sums((crops.mask > 0) & ~np.isfinite(values), crops.offsets)
    all_sizes, counts, dims, r2s, vmin, vmax = [], [], [], [], np.full(n, np.nan), np.full(n, np.nan)
    for r in range(n):
        m = crops.crop(r)
        v = values[crops.offsets[r]:crops.offsets[r + 1]].reshape(m.shape)
        if nbad[r] == 0:
            x = dbc_features_one(m, v, crops.spacing_units, min_box_size, box_sizes, g)
            c, d, r2 = x["n_dbc"], x["DBCFD"], x["r2"]
            vmin[r], vmax[r] = x["range"]
            sizes = x["sizes"]
        else:
            sizes = box_sizes_one(m.shape, crops.spacing_units, min_box_size, box_sizes) if m.any() else []
            c, d, r2 = [-1] * len(sizes), np.nan, np.nan
        all_sizes.append(np.array(sizes) / UNITS_PER_MM)
        counts.append(c)
        dims.append(d)
        r2s.append(r2)
    K = max([len(s) for s in all_sizes] + [1])
    n_sizes = np.array([len(s) for s in all_sizes], np.int64)
    plan: BoxPlan = plan_box_sizes(crops, min_box_size, box_sizes)
    reason = dbc_reasons(size_reasons(crops, plan, min_box_size, box_sizes), nbad)
    return FractalResult(_pad(all_sizes, K, np.nan, np.float64), n_sizes, {"DBCFD": _pad(counts, K, -1, np.int64)},
                         {"DBCFD": np.array(dims, np.float64)}, {"DBCFD": np.array(r2s, np.float64)}, None, reason,
                         {"DBCFD_IntensityRange": intensity_range(vmin, vmax, nbad)})
