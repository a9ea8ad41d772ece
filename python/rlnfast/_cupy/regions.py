"""Regions on the GPU with CuPy primitives: a label map and an image that already live on the device (an
nnU-Net prediction, a CT tensor) become a ragged batch on the device, with no host round trip.

Semantics are those of rlnfast.regions.find_regions + gather: every positive label (or the chosen ones) is
a region, regions in ascending label order, values in C order inside each region.
"""
from __future__ import annotations

import numpy as np

from .. import _gpu


def device_batch(image, label_map, labels=None):
    """(values, offsets, region_labels, counts, bbox) for the regions of a device label map.

    ``values`` (float64) and ``offsets`` (int64) stay on the device and feed the GPU ops directly;
    ``region_labels``, ``counts`` and ``bbox`` (z0, y0, x0, z1, y1, x1 inclusive) come back to the host
    (one small array each).
    """
    cp = _gpu.cupy()
    lm = _gpu.to_cupy(label_map)
    img = _gpu.to_cupy(image)
    if lm.ndim != 3 or img.shape != lm.shape:
        raise ValueError(f"device_batch: expected 3-D image and label map of one shape, got {img.shape} and {lm.shape}")
    if lm.dtype.kind not in "biu":
        raise ValueError(f"label map: expected an integer label map, got dtype {lm.dtype}")
    flat = lm.ravel()
    idx = cp.flatnonzero(flat > 0)                       # C order
    lab = flat[idx].astype(cp.int64)
    if labels is not None:
        want = cp.asarray(np.atleast_1d(np.asarray(labels, dtype=np.int64)))
        keep = cp.isin(lab, want)
        idx, lab = idx[keep], lab[keep]
    order = cp.argsort(lab)   # CuPy sorts stably: C order is kept inside each label
    idx, lab = idx[order], lab[order]
    present, counts = cp.unique(lab, return_counts=True)
    if labels is not None:
        missing = sorted(set(int(v) for v in np.atleast_1d(labels)) - set(int(v) for v in cp.asnumpy(present)))
        if missing:
            raise ValueError(f"label map: label(s) {missing} not present")
    if present.size == 0:
        raise ValueError("label map is empty: no voxel has a positive label")
    offsets = cp.zeros(present.size + 1, dtype=cp.int64)
    cp.cumsum(counts, out=offsets[1:])
    values = img.ravel()[idx].astype(cp.float64)
    # bounding boxes: per-region min/max of the voxel coordinates
    ny, nx = lm.shape[1], lm.shape[2]
    coords = (idx // (ny * nx), (idx // nx) % ny, idx % nx)
    seg = cp.repeat(cp.arange(present.size), counts)
    import cupyx

    bbox = cp.empty((present.size, 6), dtype=cp.int64)
    for a, c in enumerate(coords):
        lo = cp.full(present.size, np.iinfo(np.int64).max, dtype=cp.int64)
        hi = cp.full(present.size, -1, dtype=cp.int64)
        cupyx.scatter_min(lo, seg, c)
        cupyx.scatter_max(hi, seg, c)
        bbox[:, a], bbox[:, a + 3] = lo, hi
    return values, offsets, cp.asnumpy(present), cp.asnumpy(counts).astype(np.int64), cp.asnumpy(bbox)
