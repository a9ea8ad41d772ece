"""Node size of every region at once (definitions: rlnfast.spec.size, docs/features.md "Node size"):
ShortAxisDiameter, LongAxisDiameter and AxialSlices from the Feret diameters of each axial slice.

Backends: ``cpu`` (C++ rotating calipers on the convex hull of each slice's pixel corners, OpenMP over
regions) and ``numpy`` (the reference, SciPy's convex hull and brute force). ``cuda`` and ``cupy`` run the
C++ kernel on the host (``rlnfast._backends.HOST_OPS``, shown by ``rlnfast.build_info()`` and ``rlnfast
info``): the work is a few rows per slice, so a GPU kernel would not pay for the copy of the crops.
"""
from __future__ import annotations

import numpy as np

from .. import _backends
from ..spec.size import FEATURE_DOCS, FEATURES, SizeResult, check_spacing, reasons  # noqa: F401


def size_features(mask, offsets, dims, spacing_zyx, backend="auto") -> SizeResult:
    """Node size of every region of a ragged batch of bounding-box crops.

    Parameters
    ----------
    mask, offsets, dims
        Region r is ``mask[offsets[r]:offsets[r+1]]`` (nonzero = region voxel), a C-order crop of shape
        ``dims[r]`` = (nz, ny, nx) (the layout of :class:`rlnfast.spec.fractal.Crops`).
    spacing_zyx
        Voxel spacing (z, y, x) in mm; axial slices are the planes of constant z.
    backend
        'auto', 'cuda', 'cupy', 'cpu' (all three: the C++ kernel on the host) or 'numpy' (the reference).
    """
    name = _backends.resolve(backend)
    spacing = check_spacing(spacing_zyx)
    mask = np.ascontiguousarray(mask, dtype=np.uint8).ravel()
    offsets = np.ascontiguousarray(offsets, dtype=np.int64).ravel()
    dims = np.ascontiguousarray(np.asarray(dims, dtype=np.int64).reshape(-1, 3))
    if len(offsets) != len(dims) + 1:
        raise ValueError(f"offsets: {len(offsets)} entries, expected one more than the {len(dims)} crops")
    if name == "numpy":
        from ..reference.size import size_features as ref

        return ref(mask, offsets, dims, spacing)
    short, long_, slices, s_short, s_long = _backends.core().cpu.size_feret(mask, offsets, dims, spacing)
    feats = {"ShortAxisDiameter": np.asarray(short, np.float64), "LongAxisDiameter": np.asarray(long_, np.float64),
             "AxialSlices": np.asarray(slices, np.float64)}
    return SizeResult(feats, np.asarray(s_short, np.int64), np.asarray(s_long, np.int64), reasons(slices))


def size_of_crops(crops, spacing_zyx, backend="auto") -> SizeResult:
    """Node size of regions given as :class:`rlnfast.spec.fractal.Crops` (e.g. from
    :func:`rlnfast.ops.fractal.crops_from_label_map`)."""
    return size_features(crops.mask, crops.offsets, crops.dims, spacing_zyx, backend)


def size_of_masks(masks, spacing_zyx, backend="auto") -> SizeResult:
    """Node size of a list of boolean 3-D (z, y, x) masks, one region each."""
    from ..spec.fractal import crops_from_masks

    crops = crops_from_masks(masks, spacing_zyx)
    return size_of_crops(crops, spacing_zyx, backend)
