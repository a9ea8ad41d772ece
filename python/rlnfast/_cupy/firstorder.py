"""CuPy first-order path: cupy.lexsort orders values within regions, then rlnfast_firstorder_regions
(the very kernel of csrc/common/firstorder_kernel.cuh) runs one block per region on the original and the
sorted values."""
from __future__ import annotations

import numpy as np

from .. import _gpu
from . import module

BLOCK = 256
NFEATURES = 19


def firstorder(values, offsets, mode, width, count, f32, shift, vol):
    cp = _gpu.cupy()
    v = _gpu.to_cupy(values, cp.float64)
    with cp.cuda.Device(v.device.id):
        return _firstorder(cp, v, offsets, mode, width, count, f32, shift, vol)


def check_offsets(cp, o, n_values):
    """Device offsets run non-decreasing from 0 to n_values (one reduction and one small copy back)."""
    if o.ndim != 1 or len(o) < 1:
        raise ValueError("offsets: expected a 1-D int array of n_regions + 1 entries")
    bad = (o[0] != 0) | (o[-1] != n_values)
    if len(o) > 1:
        bad = bad | cp.any(o[1:] < o[:-1])
    if bool(bad):
        raise ValueError(f"offsets: expected a non-decreasing int array from 0 to len(values)={n_values}")


def _firstorder(cp, v, offsets, mode, width, count, f32, shift, vol):
    o = _gpu.to_cupy(offsets, cp.int64)
    check_offsets(cp, o, len(v))
    n_regions = len(o) - 1
    out = cp.empty((max(n_regions, 0), NFEATURES), dtype=cp.float64)
    if n_regions <= 0:
        return out.get()
    # region id of every value, then sort by (region, value)
    counts = cp.diff(o)
    rid = cp.repeat(cp.arange(n_regions, dtype=cp.int64), counts)
    order = cp.lexsort(cp.stack([v, rid.astype(cp.float64)]))
    sorted_v = cp.ascontiguousarray(v[order])
    kern = module("common/firstorder_kernel.cuh").get_function("rlnfast_firstorder_regions")
    kern((n_regions,), (BLOCK,), (v, sorted_v, o, np.int64(n_regions), np.int32(mode), np.float64(width),
                                  np.int32(count), np.int32(f32), np.float64(shift), np.float64(vol), out))
    return out.get()
