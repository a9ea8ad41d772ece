"""NumPy reference of node size (features.md, "Node size"): one region and one axial slice at a time, with
SciPy's convex hull (Qhull) of the pixels' corner points in mm and brute force over the hull, written to be
read beside the definitions. rlnfast.ops.size (C++ rotating calipers) is tested against these functions.

Per slice: F_max = the largest distance between two hull vertices (every pair), F_min = min over hull edges
of the largest distance of a hull vertex from that edge's line (a minimal-width strip has one side on an
edge of the hull).
"""
from __future__ import annotations

import numpy as np

from ..spec.size import FEATURES, SLICE_RTOL, SizeResult, check_spacing, reasons


def corner_points(pixels: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """[m, 2] distinct (x, y) corner points in mm of the True pixels of a 2-D (y, x) mask."""
    y, x = np.nonzero(pixels)
    pts = np.concatenate([np.stack([x + a, y + b], axis=1) for a in (0, 1) for b in (0, 1)])
    pts = np.unique(pts, axis=0)
    return pts * np.array([dx, dy], dtype=np.float64)


def slice_feret(pixels: np.ndarray, dy: float, dx: float) -> tuple[float, float]:
    """(F_min, F_max) in mm of one axial slice (2-D (y, x) boolean mask with at least one pixel)."""
    from scipy.spatial import ConvexHull

    pts = corner_points(pixels, dy, dx)
    hull = ConvexHull(pts)
    v = pts[hull.vertices]
    diff = v[:, None, :] - v[None, :, :]
    f_max = float(np.sqrt((diff ** 2).sum(axis=2)).max())
    widths = []
    for a, b in hull.simplices:           # every edge of the hull
        p, q = pts[a], pts[b]
        e = q - p
        dist = np.abs(e[0] * (v[:, 1] - p[1]) - e[1] * (v[:, 0] - p[0])) / np.hypot(e[0], e[1])
        widths.append(dist.max())
    return float(min(widths)), f_max


def slice_ferets(mask: np.ndarray, spacing_zyx) -> np.ndarray:
    """[nz, 2] (F_min, F_max) of every axial slice of a region crop (z, y, x); NaN for slices without pixels."""
    _, dy, dx = check_spacing(spacing_zyx)
    mask = np.asarray(mask, dtype=bool)
    out = np.full((mask.shape[0], 2), np.nan)
    for z in range(mask.shape[0]):
        if mask[z].any():
            out[z] = slice_feret(mask[z], dy, dx)
    return out


def size_one(mask: np.ndarray, spacing_zyx) -> dict:
    """ShortAxisDiameter, LongAxisDiameter, AxialSlices of one region crop and the slices of the two axes."""
    f = slice_ferets(mask, spacing_zyx)
    has = ~np.isnan(f[:, 0])
    if not has.any():
        return {"ShortAxisDiameter": np.nan, "LongAxisDiameter": np.nan, "AxialSlices": 0,
                "short_slice": -1, "long_slice": -1}
    top = np.nanmax(f, axis=0)
    first = [int(np.nonzero(has & (f[:, c] >= top[c] * (1.0 - SLICE_RTOL)))[0][0]) for c in (0, 1)]
    return {"ShortAxisDiameter": float(top[0]), "LongAxisDiameter": float(top[1]), "AxialSlices": int(has.sum()),
            "short_slice": first[0], "long_slice": first[1]}


def size_features(mask, offsets, dims, spacing_zyx) -> SizeResult:
    """Reference of :func:`rlnfast.ops.size.size_features`: a Python loop over the region crops."""
    offsets = np.asarray(offsets, np.int64)
    dims = np.asarray(dims, np.int64).reshape(-1, 3)
    rows = [size_one(np.asarray(mask[offsets[r]:offsets[r + 1]], bool).reshape(tuple(dims[r])), spacing_zyx)
            for r in range(len(offsets) - 1)]
    feats = {f: np.array([x[f] for x in rows], dtype=np.float64) for f in FEATURES}
    slices = np.array([x["AxialSlices"] for x in rows], np.int64)
    return SizeResult(feats, np.array([x["short_slice"] for x in rows], np.int64),
                      np.array([x["long_slice"] for x in rows], np.int64), reasons(slices))
