"""CuPy elasticity and DEM: the kernels of csrc/common/dem_kernel.cuh (the same source as the CUDA build),
planned here exactly as csrc/cuda/dem_cuda.cu plans them (expanded boxes, packed weights; the passes work in
float32 for a float32 map and in float64, the _d kernels, for a float64 map)."""
from __future__ import annotations

import numpy as np

from .. import _gpu
from . import module

HEADER = "common/dem_kernel.cuh"
XBLOCK = 128
BLOCK = 256
NCOL = 16
SUFFIX = {np.dtype(np.uint8): "u8", np.dtype(np.int8): "i8", np.dtype(np.uint16): "u16", np.dtype(np.int16): "i16",
          np.dtype(np.uint32): "u32", np.dtype(np.int32): "i32", np.dtype(np.int64): "i64",
          np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


def _ct(ct):
    cp = _gpu.cupy()
    d = _gpu.to_cupy(ct)
    from ..io import kernel_array

    d = kernel_array(d, "image", xp=cp)   # the one dtype rule of every op and backend
    if np.dtype(d.dtype) not in SUFFIX:
        raise ValueError(f"image: dtype {d.dtype} is not supported (expected an integer or float CT in HU)")
    return cp.ascontiguousarray(d)


def _grid(n, block):
    return (max(1, min((int(n) + block - 1) // block, 1 << 20)),)


def elasticity(ct, lo, hi, rho_w, gamma, f32):
    """(E as a CuPy array of ct's shape, first NaN flat index or -1)."""
    cp = _gpu.cupy()
    d = _ct(ct)
    out = cp.empty(d.shape, dtype=cp.float32 if f32 else cp.float64)
    bad = cp.full(1, np.iinfo(np.uint64).max, dtype=cp.uint64)
    n = d.size
    if n:
        kern = module(HEADER).get_function(f"rlnfast_elasticity_{SUFFIX[np.dtype(d.dtype)]}_{'f32' if f32 else 'f64'}")
        kern(_grid(n, BLOCK), (BLOCK,), (d, np.int64(n), np.float64(lo), np.float64(hi), np.float64(rho_w),
                                         np.float64(gamma), out, bad))
    b = int(bad.get()[0])
    return out, (-1 if b == np.iinfo(np.uint64).max else b)


def half_kernels(sigma_vox, dtype=np.float32):
    """(w0, w1) half kernels in ``dtype``, as dem_math.h gaussian_half_kernels: w0[k] = g(k), w1[k] = g'(-k)."""
    from ..reference.dem import gaussian_kernels, radius

    r = radius(sigma_vox)
    g, dg = gaussian_kernels(sigma_vox)
    w0 = g[r:].copy()
    w1 = dg[r::-1].copy()
    w1[0] = 0.0
    return r, w0.astype(dtype), w1.astype(dtype)


def plan(shape, spacing_zyx, sigma, boxes, dtype=np.float32):
    """Box descriptors [n, 16] (see dem_kernel.cuh), packed weights, radii, weight offsets, totals."""
    n = len(boxes)
    desc = np.zeros((n, NCOL), np.int64)
    r, ws, woff = [], [], []
    for ax in range(3):
        ra, w0, w1 = half_kernels(sigma / spacing_zyx[ax], dtype)
        r.append(ra)
        woff.append(sum(len(w) for w in ws))
        ws.append(w0)
        woff.append(sum(len(w) for w in ws))
        ws.append(w1)
    dims = np.asarray(shape, np.int64)
    rr = np.asarray(r, np.int64)
    lo = np.maximum(boxes[:, :3] - rr, 0)
    hi = np.minimum(boxes[:, 3:] + rr, dims - 1)
    desc[:, 0:3] = lo
    desc[:, 3:6] = hi - lo + 1
    ev = np.prod(desc[:, 3:6], axis=1)
    er = desc[:, 3] * desc[:, 4]
    desc[1:, 6] = np.cumsum(ev)[:-1]
    desc[1:, 7] = np.cumsum(er)[:-1]
    desc[:, 8:11] = boxes[:, :3] - lo
    desc[:, 11:14] = boxes[:, 3:] - boxes[:, :3] + 1
    osz = np.prod(desc[:, 11:14], axis=1)
    desc[1:, 14] = np.cumsum(osz)[:-1]
    return desc, np.concatenate(ws), r, woff, int(ev.sum()), int(er.sum()), int(osz.sum())


def dem_boxes(ct, spacing_zyx, sigma, eparams, boxes, f32):
    """(values on the host, offsets, first_nan) of DEM on every box; the same kernels as the CUDA backend."""
    cp = _gpu.cupy()
    lo_c, hi_c, rho_w, gamma = eparams
    d = _ct(ct)
    nz, ny, nx = (int(v) for v in d.shape)
    boxes = np.asarray(boxes, np.int64).reshape(-1, 6)
    n = len(boxes)
    offsets = np.zeros(n + 1, np.int64)
    if n == 0:
        return np.zeros(0, np.float32 if f32 else np.float64), offsets, np.zeros(0, np.int64)
    ft = np.float32 if f32 else np.float64   # the passes' storage and accumulation type
    sfx = "" if f32 else "_d"
    desc, w, r, woff, n_vox, n_rows, n_out = plan(d.shape, spacing_zyx, sigma, boxes, ft)
    offsets[1:] = np.cumsum(np.prod(boxes[:, 3:] - boxes[:, :3] + 1, axis=1))
    mod = module(HEADER)
    desc_d = cp.asarray(desc)
    w_d = cp.asarray(w)
    nan_d = cp.full(n, np.iinfo(np.uint64).max, dtype=cp.uint64)
    A, B, C, Y, X = (cp.empty(n_vox, ft) for _ in range(5))
    out = cp.empty(n_out, cp.float32 if f32 else cp.float64)
    shmem = np.dtype(ft).itemsize * (XBLOCK + 2 * r[2])
    if shmem > 48 * 1024:
        raise ValueError("dem: sigma / spacing along x is too large for the GPU kernel")
    xk = mod.get_function(f"rlnfast_dem_xpass_{SUFFIX[np.dtype(d.dtype)]}{sfx}")
    xk((max(1, min(n_rows, 1 << 20)),), (XBLOCK,),
       (d, np.int64(ny), np.int64(nx), desc_d, np.int64(n), np.int64(n_rows), w_d[woff[4]:], w_d[woff[5]:],
        np.int32(r[2]), np.float64(lo_c), np.float64(hi_c), np.float64(rho_w), np.float64(gamma), A, B, nan_d),
       shared_mem=shmem)
    yk = mod.get_function(f"rlnfast_dem_ypass{sfx}")
    yk(_grid(n_vox, BLOCK), (BLOCK,), (desc_d, np.int64(n), np.int64(n_vox), w_d[woff[2]:], w_d[woff[3]:],
                                       np.int32(r[1]), A, B, C, Y, X))
    zk = mod.get_function("rlnfast_dem_zpass_f32" if f32 else "rlnfast_dem_zpass_d")
    zk(_grid(n_out, BLOCK), (BLOCK,), (desc_d, np.int64(n), np.int64(n_out), w_d[woff[0]:], w_d[woff[1]:],
                                       np.int32(r[0]), C, Y, X, np.float64(spacing_zyx[0]),
                                       np.float64(spacing_zyx[1]), np.float64(spacing_zyx[2]), np.float64(sigma), out))
    bad = nan_d.get()
    first_nan = np.where(bad == np.iinfo(np.uint64).max, -1, bad.astype(np.int64))
    return out.get(), offsets, first_nan
