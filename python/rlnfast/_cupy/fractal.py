"""CuPy fractal path: the kernels of csrc/common/fractal_kernel.cuh (the very ones the CUDA build runs),
launched on host-built tiles; host arrays in, host arrays out, like rlnfast._core.cuda.fractal_*."""
from __future__ import annotations

import numpy as np

from .. import _gpu
from . import module

BLOCK = 256
TILE = 2048
HEADER = "common/fractal_kernel.cuh"


def _grid_boxes(n, d, s):
    return (n * d + s - 1) // s


def _plan(dims, spacing, pair_region, pair_size):
    """Box offsets per pair and the (pair, first voxel) tiles, as csrc/cuda/fractal_cuda.cu builds them."""
    d = dims[pair_region]
    nb = np.ones(len(pair_region), np.int64)
    for a in range(3):
        nb *= _grid_boxes(d[:, a], spacing[a], pair_size)
    box_off = np.zeros(len(pair_region) + 1, np.int64)
    np.cumsum(nb, out=box_off[1:])
    nvox = d.prod(axis=1)
    ntile = -(-nvox // TILE)
    tile_pair = np.repeat(np.arange(len(pair_region), dtype=np.int64), ntile)
    first = np.repeat(np.cumsum(ntile) - ntile, ntile)
    tile_start = (np.arange(len(tile_pair), dtype=np.int64) - first) * TILE
    return box_off, tile_pair, tile_start, nb


def _fn(name):
    return module(HEADER).get_function(name)


def fractal_boxes(mask, offsets, dims, spacing, pair_region, pair_size):
    cp = _gpu.cupy()
    dims = np.asarray(dims, np.int64).reshape(-1, 3)
    spacing = np.asarray(spacing, np.int64)
    pair_region = np.asarray(pair_region, np.int64)
    pair_size = np.asarray(pair_size, np.int64)
    P = len(pair_region)
    if P == 0:
        z = np.zeros(0, np.int64)
        return z, z.copy(), z.copy(), z.copy()
    box_off, tile_pair, tile_start, nb = _plan(dims, spacing, pair_region, pair_size)
    nboxes = int(box_off[-1])
    d = {k: cp.asarray(v) for k, v in dict(mask=np.asarray(mask, np.uint8), offsets=np.asarray(offsets, np.int64),
                                           dims=dims, preg=pair_region, psize=pair_size, boff=box_off,
                                           tp=tile_pair, ts=tile_start).items()}
    fm = cp.zeros(max(nboxes, 1), cp.uint8)
    fs = cp.zeros(max(nboxes, 1), cp.uint8)
    mc = cp.zeros(max(nboxes, 1), cp.int32)
    nt = len(tile_pair)
    if nt:
        _fn("rlnfast_fractal_boxes_scatter")(
            (nt,), (BLOCK,), (d["tp"], d["ts"], np.int64(nt), d["mask"], d["offsets"], d["dims"],
                              np.int64(spacing[0]), np.int64(spacing[1]), np.int64(spacing[2]), d["preg"],
                              d["psize"], d["boff"], fm, fs, mc))
    o1, o2, o3 = (cp.empty(P, cp.int64) for _ in range(3))
    _fn("rlnfast_fractal_boxes_reduce")((P,), (BLOCK,), (np.int64(P), d["boff"], fm, fs, mc, o1, o2, o3))
    return o1.get(), o2.get(), o3.get(), nb


def fractal_dbc(mask, values, offsets, dims, spacing, pair_region, pair_size, grey_levels):
    cp = _gpu.cupy()
    dims = np.asarray(dims, np.int64).reshape(-1, 3)
    spacing = np.asarray(spacing, np.int64)
    pair_region = np.asarray(pair_region, np.int64)
    pair_size = np.asarray(pair_size, np.int64)
    n = len(offsets) - 1
    P = len(pair_region)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    box_off, tile_pair, tile_start, _ = _plan(dims, spacing, pair_region, pair_size)
    nboxes = int(box_off[-1])
    d = {k: cp.asarray(v) for k, v in dict(mask=np.asarray(mask, np.uint8), values=np.asarray(values, np.float64),
                                           offsets=np.asarray(offsets, np.int64), dims=dims, preg=pair_region,
                                           psize=pair_size, boff=box_off, tp=tile_pair, ts=tile_start).items()}
    vmin = cp.empty(n, cp.float64)
    vmax = cp.empty(n, cp.float64)
    _fn("rlnfast_fractal_minmax")((n,), (BLOCK,), (np.int64(n), d["mask"], d["values"], d["offsets"], vmin, vmax))
    out = cp.zeros(max(P, 1), cp.int64)
    if P:
        qmin = cp.full(max(nboxes, 1), np.iinfo(np.int32).max, cp.int32)
        qmax = cp.full(max(nboxes, 1), -1, cp.int32)
        nt = len(tile_pair)
        if nt:
            _fn("rlnfast_fractal_dbc_scatter")(
                (nt,), (BLOCK,), (d["tp"], d["ts"], np.int64(nt), d["mask"], d["values"], d["offsets"], d["dims"],
                                  np.int64(spacing[0]), np.int64(spacing[1]), np.int64(spacing[2]), d["preg"],
                                  d["psize"], d["boff"], vmin, vmax, np.int32(grey_levels), qmin, qmax))
        _fn("rlnfast_fractal_dbc_reduce")((P,), (BLOCK,), (np.int64(P), d["boff"], qmin, qmax, out))
    return out[:P].get(), vmin.get(), vmax.get()
