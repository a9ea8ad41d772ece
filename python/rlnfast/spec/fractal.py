"""The fractal features' specification, shared by the ops (rlnfast.ops.fractal) and the NumPy reference
(rlnfast.reference.fractal): feature names and formulas, the crops layout, the box-size plan, the result
container and the NaN reasons. Imports nothing from ops/ or reference/.

Box-counting dimensions, differential box counting (DBC) and lacunarity in physical space
(docs/features.md, "Fractal features").

Geometry. A region is the union of its voxels' cuboids: along each axis voxel i of the region's bounding
box spans [i*d, (i+1)*d) mm from the box's lower corner (d = that axis' spacing). Box j of size s spans
[j*s, (j+1)*s): the grid is anchored at the bounding box's lower corner and covers it with ceil(n*d/s)
boxes per axis. Voxel i intersects boxes floor(i*d/s) .. ceil((i+1)*d/s) - 1 (a voxel can straddle boxes
when s is not a multiple of d); its centre (i + 1/2)*d lies in box floor((i + 1/2)*d/s).

Exact arithmetic. Spacings and box sizes are rounded once to whole units of 1e-6 mm (1 nm,
``UNITS_PER_MM``); from then on every voxel/box comparison is an integer one (csrc/common/fractal_math.h),
so 0.7 mm voxels in 1.4 mm boxes, or 2 mm voxels in 1 mm boxes, never land on the wrong side of an edge
through rounding, and all backends give identical integer counts. DBC's grey levels are the one
floating-point step; every backend evaluates them with the same IEEE operations in the same order.

Box sizes (``fractalMinBoxSize``, ``fractalBoxSizes``). s_k = s_min * 2^k mm, k = 0..K-1, with
s_min = ``fractalMinBoxSize`` (default: the smallest voxel spacing) and s_{K-1} <= L, L = the largest
physical extent of the region's bounding box (n_a * d_a over the axes a). An explicit ``fractalBoxSizes``
list (mm, sorted ascending here) replaces this for every region. Fewer than 3 sizes: every fractal feature
of the region is NaN and ``diagnostics_fractal_Reason`` says why; a MaskFD_local_k whose size s_{k+1} is
missing is NaN with its own reason in ``diagnostics_fractal_MaskFD_local_k_Reason``. (Until 2026-12 the
default was the largest spacing and L/2, which left nodes under about 15 mm at 0.7 x 0.7 x 2.5 mm with fewer
than 3 sizes.)

Fit. Each dimension is the slope of the ordinary least-squares line of ln N(s) on ln(1/s) over the sizes;
the diagnostics give the sizes, the counts and R^2 = 1 - SS_res / SS_tot of that line.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

UNITS_PER_MM = 1_000_000

# Region-only features (reported once per region as original_fractal_<name>) and per-image-type features.
REGION_FEATURES = ("MaskFD", "SurfaceFD", "Lacunarity", "MaskFD_local_0", "MaskFD_local_1", "MaskFD_local_2")
IMAGE_FEATURES = ("DBCFD",)
FEATURES = REGION_FEATURES + IMAGE_FEATURES
N_LOCAL = 3

FEATURE_DOCS = {
    "MaskFD": "Box-counting dimension of the region: slope of the OLS fit of ln N(s) on ln(1/s), "
              "N(s) = number of grid boxes of size s (mm) that intersect the union of the region's voxel "
              "cuboids, over the sizes s_k = s_min * 2^k <= L (s_min: fractalMinBoxSize, default the smallest "
              "voxel spacing; L: the largest extent of the bounding box; or fractalBoxSizes). Dimensionless; 3 for a "
              "solid cube, 2 for a plane, 1 for a line.",
    "SurfaceFD": "Box-counting dimension of the region's boundary: as MaskFD, counting only the boxes that "
                 "intersect boundary voxels (region voxels with a 6-neighbour outside the region; outside the "
                 "volume counts as outside). About 2 for a smooth solid.",
    "Lacunarity": "mean over the box sizes s of Lambda(s) = E[M^2] / E[M]^2 = B(s) * sum_b M_b^2 / (sum_b M_b)^2, "
                  "M_b = number of region voxel centres in grid box b, over all B(s) = prod_a ceil(n_a d_a / s) "
                  "boxes of the grid covering the bounding box (empty boxes included). 1 + (1-p)/(p n) for a "
                  "Bernoulli(p) mask with n voxels per box; larger = gappier.",
    "MaskFD_local_0": "Multi-scale dimension between the two smallest sizes: ln(N(s_0)/N(s_1)) / ln(s_1/s_0), "
                      "N as in MaskFD. NaN when s_1 is missing (reason: diagnostics_fractal_MaskFD_local_0_Reason).",
    "MaskFD_local_1": "ln(N(s_1)/N(s_2)) / ln(s_2/s_1), N as in MaskFD. NaN when s_2 is missing (reason: "
                      "diagnostics_fractal_MaskFD_local_1_Reason).",
    "MaskFD_local_2": "ln(N(s_2)/N(s_3)) / ln(s_3/s_2), N as in MaskFD. NaN when s_3 is missing, i.e. "
                      "s_min * 8 > L (reason: diagnostics_fractal_MaskFD_local_2_Reason).",
    "DBCFD": "Differential box-counting dimension of the image type's intensities in the region: g = (I - min) * "
             "(G - 1) / (max - min) in [0, G-1] (G = fractalGreyLevels, default 256; min and max over the "
             "region), h = s * G / L; for each grid box b holding region voxel centres, n_b = "
             "floor(gmax_b / h) - floor(gmin_b / h) + 1; N(s) = sum_b n_b; DBCFD = OLS slope of ln N(s) on "
             "ln(1/s). Constant intensities give n_b = 1 (DBCFD = the box-counting dimension of the centres).",
}


# ---- inputs ----------------------------------------------------------------------------------------------

@dataclass
class Crops:
    """Regions as bounding-box crops: ``mask[offsets[r]:offsets[r+1]]`` is region r's crop (C order) of
    shape ``dims[r]``; ``spacing_units`` (z, y, x) in units of 1e-6 mm."""

    mask: np.ndarray
    offsets: np.ndarray
    dims: np.ndarray
    spacing_units: np.ndarray
    count: np.ndarray = None   # region voxels per crop

    def __post_init__(self):
        self.mask = np.ascontiguousarray(self.mask, dtype=np.uint8)
        self.offsets = np.ascontiguousarray(self.offsets, dtype=np.int64)
        self.dims = np.ascontiguousarray(np.asarray(self.dims, dtype=np.int64).reshape(-1, 3))
        self.spacing_units = np.ascontiguousarray(self.spacing_units, dtype=np.int64)
        if self.count is None:
            self.count = segment_sums(self.mask, self.offsets)

    def __len__(self):
        return len(self.offsets) - 1

    @property
    def spacing_mm(self):
        return self.spacing_units / UNITS_PER_MM

    def crop(self, r: int) -> np.ndarray:
        """Region r's mask crop as a boolean (nz, ny, nx) array."""
        return self.mask[self.offsets[r]:self.offsets[r + 1]].reshape(tuple(self.dims[r])).astype(bool)


def segment_sums(x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum of x over each ragged segment (int64; empty segments give 0)."""
    c = np.zeros(len(x) + 1, dtype=np.int64)
    np.cumsum(x, out=c[1:], dtype=np.int64)
    return c[offsets[1:]] - c[offsets[:-1]]


def to_units(mm, what="length") -> np.ndarray:
    """Lengths in mm -> whole units of 1e-6 mm (int64); refuses non-finite or non-positive lengths."""
    a = np.asarray(mm, dtype=np.float64)
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{what}={np.asarray(mm).tolist()!r}: expected finite lengths > 0 mm")
    u = np.rint(a * UNITS_PER_MM).astype(np.int64)
    if np.any(u <= 0):
        raise ValueError(f"{what}={np.asarray(mm).tolist()!r}: lengths below 1e-6 mm are not supported")
    return u


def crops_from_masks(masks, spacing_zyx) -> Crops:
    """Crops from a list of boolean 3-D masks (each cropped to its region's bounding box here)."""
    parts, dims = [], []
    for m in masks:
        m = np.asarray(m, dtype=bool)
        if m.ndim != 3:
            raise ValueError(f"mask: expected a 3-D array, got shape {m.shape}")
        if m.any():
            idx = [np.nonzero(m.any(axis=tuple(b for b in range(3) if b != a)))[0] for a in range(3)]
            m = m[tuple(slice(i[0], i[-1] + 1) for i in idx)]
        else:
            m = np.zeros((0, 0, 0), bool)
        parts.append(m.ravel())
        dims.append(m.shape)
    offsets = np.zeros(len(parts) + 1, np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    mask = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
    return Crops(mask, offsets, np.asarray(dims, np.int64).reshape(-1, 3), to_units(spacing_zyx, "spacing"))


def pack_values(crops: Crops, crop_fn) -> np.ndarray:
    """Ragged float64 intensities in the crops' layout from ``crop_fn(r)`` (region r's bounding-box array)."""
    out = np.empty(len(crops.mask), dtype=np.float64)
    for r in range(len(crops)):
        a, b = crops.offsets[r], crops.offsets[r + 1]
        if b > a:
            c = np.asarray(crop_fn(r), dtype=np.float64)
            if c.shape != tuple(crops.dims[r]):
                raise ValueError(f"intensity crop of region {r}: shape {c.shape}, expected {tuple(crops.dims[r])}")
            out[a:b] = c.ravel()
    return out


# ---- box sizes -------------------------------------------------------------------------------------------

@dataclass
class BoxPlan:
    """Box sizes of every region: ``sizes[r, :n_sizes[r]]`` in units (0 beyond), and the flattened
    (region, size) pairs the kernels take."""

    sizes: np.ndarray        # [n, K] int64 units
    n_sizes: np.ndarray      # [n]
    extent: np.ndarray       # [n] L in units
    pair_region: np.ndarray
    pair_k: np.ndarray
    pair_size: np.ndarray

    @property
    def sizes_mm(self) -> np.ndarray:
        out = self.sizes / UNITS_PER_MM
        out[self.sizes == 0] = np.nan
        return out


def default_min_box_units(spacing_units, min_box_size=None) -> int:
    """s_min in units: ``min_box_size`` (mm, setting fractalMinBoxSize) or the smallest voxel spacing."""
    if min_box_size is None:
        return int(np.min(spacing_units))
    return int(to_units(min_box_size, "fractalMinBoxSize"))


def plan_box_sizes(crops: Crops, min_box_size=None, box_sizes=None) -> BoxPlan:
    """The box sizes of every region (vectorised): ``box_sizes`` (mm) for every non-empty region when given,
    else s_min * 2^k <= L with s_min = ``min_box_size`` (default: the smallest spacing)."""
    d = crops.dims
    n = len(d)
    extent = (d * crops.spacing_units[None, :]).max(axis=1) if n else np.zeros(0, np.int64)
    nonempty = crops.count > 0
    if box_sizes is not None:
        s = np.unique(to_units(np.atleast_1d(np.asarray(box_sizes, dtype=np.float64)), "fractalBoxSizes"))
        sizes = np.where(nonempty[:, None], s[None, :], 0).astype(np.int64)
        n_sizes = np.where(nonempty, len(s), 0).astype(np.int64)
    else:
        smin = default_min_box_units(crops.spacing_units, min_box_size)
        kmax = 0
        while n and (smin << kmax) <= int(extent.max()) and kmax < 40:
            kmax += 1
        ks = np.arange(max(kmax, 1), dtype=np.int64)
        cand = np.int64(smin) << ks
        ok = (cand[None, :] <= extent[:, None]) & nonempty[:, None]
        n_sizes = ok.sum(axis=1).astype(np.int64)
        sizes = np.where(ok, cand[None, :], 0).astype(np.int64)
    r, k = np.nonzero(sizes > 0)
    return BoxPlan(sizes, n_sizes, extent.astype(np.int64), r.astype(np.int64), k.astype(np.int64),
                   sizes[r, k].astype(np.int64))


def check_grey_levels(g) -> int:
    if isinstance(g, bool) or int(g) != g or int(g) < 2:
        raise ValueError(f"fractalGreyLevels={g!r}: expected an integer >= 2")
    return int(g)


# ---- features --------------------------------------------------------------------------------------------

@dataclass
class FractalResult:
    """Per-region fractal results: features (name -> [n]), the box sizes, every count and the fits' R^2.
    ``reason[r]`` is '' or why the region's features are NaN; ``feature_reasons[f][r]`` the same for one
    feature f that can be NaN on its own (MaskFD_local_k)."""

    sizes_mm: np.ndarray
    n_sizes: np.ndarray
    counts: dict               # name -> [n, K] int64, -1 where no size
    features: dict             # name -> [n] float64
    r2: dict = field(default_factory=dict)
    lacunarity: np.ndarray = None   # [n, K] Lambda(s)
    reason: np.ndarray = None
    extra: dict = field(default_factory=dict)   # further per-region diagnostics (name -> [n, k] array)
    feature_reasons: dict = field(default_factory=dict)   # feature -> [n] reasons of that feature alone

    def diagnostics(self, prefix: str = "diagnostics_fractal_") -> dict:
        """JSON strings per region: sizes, counts, R^2 and the NaN reason (for the feature table)."""
        n = len(self.n_sizes)
        out = {f"{prefix}BoxSizes": [json.dumps([float(s) for s in self.sizes_mm[r, :self.n_sizes[r]]]) for r in range(n)]}
        for name, c in self.counts.items():
            out[f"{prefix}{name}_Counts"] = [json.dumps([int(v) for v in c[r, :self.n_sizes[r]]]) for r in range(n)]
        for name, v in self.r2.items():
            out[f"{prefix}{name}_R2"] = [float(x) for x in v]
        if self.lacunarity is not None:
            out[f"{prefix}Lacunarity_PerSize"] = [
                json.dumps([float(x) for x in self.lacunarity[r, :self.n_sizes[r]]]) for r in range(n)]
        for name, v in self.extra.items():   # [n, k] arrays: one JSON list per region (NaN -> null)
            out[f"{prefix}{name}"] = [json.dumps([None if not np.isfinite(x) else float(x) for x in row])
                                      for row in np.asarray(v, np.float64).reshape(n, -1)]
        out[f"{prefix}Reason"] = [str(x) for x in self.reason]
        for name, v in self.feature_reasons.items():
            out[f"{prefix}{name}_Reason"] = [str(x) for x in v]
        return out


def _sizes_text(crops: Crops, plan: BoxPlan, r: int, min_box_size, box_sizes) -> str:
    """How region r's box sizes came about, for the reasons."""
    n = int(plan.n_sizes[r])
    if box_sizes is not None:
        return f"fractalBoxSizes has {n}"
    smin = default_min_box_units(crops.spacing_units, min_box_size) / UNITS_PER_MM
    what = "fractalMinBoxSize" if min_box_size is not None else "the smallest voxel spacing"
    return (f"{n} sizes s_min * 2^k <= L with s_min = {smin:g} mm ({what}) and L = "
            f"{plan.extent[r] / UNITS_PER_MM:g} mm, the largest extent of the region's bounding box")


def size_reasons(crops: Crops, plan: BoxPlan, min_box_size, box_sizes) -> np.ndarray:
    """Per region: '' or why every fractal feature of the region is NaN (empty, or fewer than 3 box sizes)."""
    n = len(crops)
    reason = np.array([""] * n, dtype=object)
    for r in np.nonzero(plan.n_sizes < 3)[0]:
        if crops.count[r] == 0:
            reason[r] = "empty region: no voxels"
        else:
            reason[r] = (f"fewer than 3 box sizes: {_sizes_text(crops, plan, r, min_box_size, box_sizes)} "
                         "(region too small for these sizes; lower fractalMinBoxSize or set fractalBoxSizes)")
    return reason


def local_reasons(crops: Crops, plan: BoxPlan, min_box_size, box_sizes, reason) -> dict:
    """``{"MaskFD_local_k": [n] reasons}``: '' where MaskFD_local_k is defined, else why it is NaN (the
    region's own reason when all its features are NaN, else the missing size s_{k+1})."""
    n = len(crops)
    out = {}
    for k in range(N_LOCAL):
        rk = np.array([""] * n, dtype=object)
        for r in np.nonzero(plan.n_sizes < k + 2)[0]:
            if reason[r]:
                rk[r] = reason[r]
            else:
                rk[r] = (f"no box size s_{k + 1}: MaskFD_local_{k} needs s_{k} and s_{k + 1} = s_{k} * 2, the region "
                         f"has {_sizes_text(crops, plan, r, min_box_size, box_sizes)}")
        out[f"MaskFD_local_{k}"] = rk
    return out


def dbc_reasons(reason, nbad):
    """Add the non-finite-intensity reason (DBCFD NaN) to the box-size reasons."""
    for r in np.nonzero(nbad > 0)[0]:
        if not reason[r]:
            reason[r] = f"{int(nbad[r])} non-finite intensities in the region"
    return reason


def intensity_range(vmin, vmax, nbad) -> np.ndarray:
    """[n, 2] (min, max) of each region's intensities; NaN for an empty region or non-finite intensities.
    min == max: constant intensities, n = 1 per box and DBCFD is the box dimension of the voxel centres."""
    out = np.stack([np.asarray(vmin, np.float64), np.asarray(vmax, np.float64)], axis=1).reshape(-1, 2)
    out[np.asarray(nbad) > 0] = np.nan
    return out
