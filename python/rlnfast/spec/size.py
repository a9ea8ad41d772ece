"""Node size, the ``size`` feature class's specification (docs/features.md, "Node size"), shared by the op
(rlnfast.ops.size) and the NumPy reference (rlnfast.reference.size): names, formulas, the result container
and the NaN reasons. Imports nothing from ops/ or reference/.

Geometry. Axial slices are the planes of constant z index (the array's first axis, (z, y, x) order; the
image's first two axes x and y in SimpleITK's order). A slice's shape is the union of its pixels' squares,
pixel (y, x) spanning [x dx, (x+1) dx) x [y dy, (y+1) dy) mm. Per slice:

* F_max, the maximum Feret diameter: the largest distance between two corner points of the slice's pixels;
* F_min, the minimum Feret diameter: the smallest width of the convex hull of those corner points between
  two parallel lines, over all directions (the caliper width).

LongAxisDiameter = max over slices of F_max, ShortAxisDiameter = max over slices of F_min (RECIST 1.1's short
axis for a convex node: pathological from 10 mm), AxialSlices = slices holding the region. The two maxima may
come from different slices; the diagnostics name both (z index in the volume; among slices with the same
diameter, to ``SLICE_RTOL``, the lowest z).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FEATURES = ("ShortAxisDiameter", "LongAxisDiameter", "AxialSlices")

FEATURE_DOCS = {
    "ShortAxisDiameter": "max over the region's axial slices (constant z) of the slice's minimum Feret diameter "
                         "F_min: the smallest distance between two parallel lines enclosing the slice's pixel "
                         "squares (the width of the convex hull of their corner points, minimised over "
                         "directions), in mm. RECIST 1.1's short axis for a convex node (pathological from "
                         "10 mm). An a x b pixel block gives min(a dx, b dy).",
    "LongAxisDiameter": "max over the region's axial slices of the slice's maximum Feret diameter F_max: the "
                        "largest distance between two corner points of the slice's pixels, in mm. An a x b "
                        "pixel block gives sqrt((a dx)^2 + (b dy)^2).",
    "AxialSlices": "number of axial slices (z indices) that hold at least one voxel of the region.",
}

EMPTY_REASON = "empty region: no voxels"

# The slice reported for an axis is the first (lowest z) whose diameter is within this relative distance of
# the maximum: equal diameters of several slices differ in their last bits between implementations.
SLICE_RTOL = 1e-9


@dataclass
class SizeResult:
    """Per-region node size: ``features`` (name -> [n]), the z index (within each region's crop) of the slice
    that gave the short and the long axis (-1 for an empty region) and ``reason[r]`` ('' or why NaN)."""

    features: dict
    short_slice: np.ndarray
    long_slice: np.ndarray
    reason: np.ndarray

    def diagnostics(self, z0=None, prefix: str = "diagnostics_size_") -> dict:
        """Columns for the feature table: the slices of the two axes as z indices of the volume (``z0[r]``:
        region r's first z index; crop indices when None) and the NaN reason."""
        off = np.zeros(len(self.reason), np.int64) if z0 is None else np.asarray(z0, np.int64)
        s = np.where(self.short_slice >= 0, self.short_slice + off, -1)
        l = np.where(self.long_slice >= 0, self.long_slice + off, -1)
        return {f"{prefix}ShortAxisSlice": s.astype(np.int64), f"{prefix}LongAxisSlice": l.astype(np.int64),
                f"{prefix}Reason": [str(x) for x in self.reason]}


def reasons(slices) -> np.ndarray:
    """'' for every region with a slice, else why its diameters are NaN."""
    slices = np.asarray(slices)
    out = np.array([""] * len(slices), dtype=object)
    out[slices == 0] = EMPTY_REASON
    return out


def check_spacing(spacing_zyx) -> np.ndarray:
    """Spacing (z, y, x) in mm as float64, refusing non-finite or non-positive values."""
    s = np.asarray(spacing_zyx, dtype=np.float64).ravel()
    if s.shape != (3,) or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"spacing={np.asarray(spacing_zyx).tolist()!r}: expected 3 finite lengths > 0 mm (z, y, x)")
    return s
