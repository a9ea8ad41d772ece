"""The differential elasticity map DEM, voxelwise, on any backend (features.md, "Differential elasticity map").

    DEM = sigma * sqrt(D_z^2 + D_y^2 + D_x^2),   D_a = d/dx_a (G_sigma * E)  in 1/mm,  sigma in mm (default 1)

E is the elasticity image (rlnfast.ops.elasticity); D_a equals
``scipy.ndimage.gaussian_filter(E, sigma / spacing, order=<1 on axis a>, mode='nearest', truncate=4.0)
/ spacing[a]``: sampled Gaussian kernels of sigma / spacing[a] voxels and radius int(4 sigma / spacing[a]
+ 0.5) per axis, 'nearest' extension at the volume border. The compiled backends run separable passes
with the HU -> E transform fused into the first one (E is never stored for the volume).

Two ways to run:

* :func:`dem`: the whole volume, returned with the input's geometry;
* :func:`dem_regions` / :func:`dem_boxes`: only the bounding boxes of regions (all in one call), each
  read with the filter halo from the full volume, so every box equals the whole-volume map on it
  (a box at the volume border follows 'nearest' at the volume border, not at the box border).

Backends: 'cpu' (C++, float64, OpenMP over tiles or boxes), 'cuda' and 'cupy' (the kernels of
csrc/common/dem_kernel.cuh: float32 passes for a float32 map, float64 passes for a float64 map, the default and
what feeds features, so DEM features agree across backends to 1e-9), 'numpy' (rlnfast.reference.dem, float64).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _backends, _gpu
from .elasticity import (CLIP_RANGE, GAMMA, as_volume, ct_array, elasticity_array, elasticity_params, give_back,
                         nan_error)

SIGMA = 1.0
TRUNCATE = 4.0
MAP_FORMATS = {"nii.gz": ".nii.gz", "nii": ".nii", "nrrd": ".nrrd", "mha": ".mha"}


def check_sigma(sigma) -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.number)) or not math.isfinite(sigma) \
            or sigma <= 0:
        raise ValueError(f"sigma={sigma!r}: expected a finite number > 0 (the Gaussian scale in mm)")
    return float(sigma)


MAX_FILTER_RADIUS = 1024   # voxels per axis: beyond this the spacing (or sigma) is not a CT's


def filter_radius(spacing_zyx, sigma=SIGMA) -> tuple:
    """Halo of the filter in voxels per axis (z, y, x): scipy's int(4 sigma / spacing + 0.5). A halo above
    MAX_FILTER_RADIUS voxels (sigma 1 mm at a spacing under 0.004 mm: micrometres, not a CT's millimetres;
    every voxel would read millions of neighbours for minutes) is a ValueError naming spacing and sigma."""
    s = check_sigma(sigma)
    r = tuple(int(min(TRUNCATE * (s / float(sp)) + 0.5, 2.0 ** 62)) for sp in spacing_zyx)
    if max(r) > MAX_FILTER_RADIUS:
        raise ValueError(f"DEM: sigma {s:g} mm at spacing (z, y, x) {tuple(float(v) for v in spacing_zyx)} mm is a "
                         f"Gaussian filter reaching {max(r)} voxels per axis (limit {MAX_FILTER_RADIUS}); the "
                         "spacing looks wrong for a CT (is it in mm?), or sigma is far too large for it")
    return r


def _check_spacing(spacing_zyx) -> tuple:
    try:
        sp = tuple(float(s) for s in spacing_zyx) if not isinstance(spacing_zyx, (str, bytes)) else ()
    except (TypeError, ValueError):
        sp = ()
    if len(sp) != 3 or any(not math.isfinite(s) or s <= 0 for s in sp):
        raise ValueError(f"spacing_zyx={spacing_zyx!r}: expected 3 finite numbers > 0 (z, y, x) in mm")
    return sp


@dataclass
class DemCrops:
    """DEM on boxes: box i's map (C order) is ``values[offsets[i]:offsets[i+1]]``, shaped by ``boxes[i]``
    (z0, y0, x0, z1, y1, x1 inclusive, volume coordinates)."""

    values: np.ndarray
    offsets: np.ndarray
    boxes: np.ndarray
    radius: tuple = (0, 0, 0)

    def __len__(self):
        return len(self.boxes)

    def shape(self, i: int) -> tuple:
        if self.offsets[i + 1] == self.offsets[i]:
            return (0, 0, 0)
        b = self.boxes[i]
        return tuple(int(b[a + 3] - b[a] + 1) for a in range(3))

    def crop(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i]:self.offsets[i + 1]].reshape(self.shape(i))


def _check_boxes(boxes, shape) -> np.ndarray:
    b = np.ascontiguousarray(np.asarray(boxes, dtype=np.int64).reshape(-1, 6))
    if len(b):
        lo, hi = b[:, :3], b[:, 3:]
        bad = np.nonzero(np.any(lo < 0, axis=1) | np.any(hi >= np.asarray(shape), axis=1) | np.any(lo > hi, axis=1))[0]
        if len(bad):
            raise ValueError(f"boxes: box {int(bad[0])} {tuple(int(v) for v in b[bad[0]])} is empty or outside the "
                             f"volume of shape {tuple(shape)} (expected z0, y0, x0, z1, y1, x1 inclusive)")
    return b


def dem_boxes(ct, spacing_zyx, boxes, *, sigma=SIGMA, gamma=GAMMA, clip_range=CLIP_RANGE, reference_density=None,
              dtype=np.float64, backend: str = "auto", name: str = "image", box_names=None, volume=None) -> DemCrops:
    """DEM of a CT array (z, y, x; spacing (z, y, x) mm) on every box of ``boxes`` [n, 6] in one call.

    Each box's values equal the whole-volume map on that box (reads are clamped to the volume). NaN read
    by a box (inside it or its filter halo) is a ValueError naming the voxel (index in ``ct``; and its physical
    position when ``volume``, the rlnfast.io.Volume of ``ct``, is given) and ``box_names[i]``.
    """
    s = check_sigma(sigma)
    sp = _check_spacing(spacing_zyx)
    lo, hi, rho_w, g = elasticity_params(gamma, clip_range, reference_density)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype={dtype}: expected float32 or float64")
    f32 = dtype == np.float32
    be = _backends.resolve(backend)
    on_device = _gpu.is_device_array(ct)
    shape = tuple(int(v) for v in ct.shape)
    if len(shape) != 3:
        raise ValueError(f"{name}: expected a 3-D image (z, y, x), got shape {shape}")
    if min(shape) <= 0:
        raise ValueError(f"{name}: expected a non-empty 3-D image, got shape {shape}")
    b = _check_boxes(boxes, shape)
    radius = filter_radius(sp, s)
    if be == "numpy":
        values, offsets, first_nan = _reference_boxes(ct_array(_gpu.to_host(ct)), sp, s, b, (lo, hi), rho_w, g, radius)
        values = values.astype(dtype, copy=False)
    elif be == "cupy":
        from .._cupy.dem import dem_boxes as cupy_dem_boxes

        values, offsets, first_nan = cupy_dem_boxes(ct, sp, s, (lo, hi, rho_w, g), b, f32)
    elif be == "cuda" and on_device:
        cp = _gpu.cupy()
        d = _gpu.to_cupy(ct)
        if d.dtype == cp.bool_:
            d = d.view(cp.uint8)
        sizes = np.prod(b[:, 3:] - b[:, :3] + 1, axis=1) if len(b) else np.zeros(0, np.int64)
        offsets = np.zeros(len(b) + 1, np.int64)
        np.cumsum(sizes, out=offsets[1:])
        with cp.cuda.Device(d.device.id):   # output and stream on the CT's device (the kernel runs there)
            out = cp.empty(int(offsets[-1]), dtype=cp.float32 if f32 else cp.float64)
            stream = cp.cuda.get_current_stream()
            first_nan = _backends.core().cuda.dem(d.data.ptr, np.dtype(d.dtype), *shape, list(sp), s, lo, hi, rho_w,
                                                  g, b, f32, out.data.ptr, stream.ptr)
            values = out.get()
    else:
        arr = ct_array(_gpu.to_host(ct))
        core = _backends.core()
        fn = core.cpu.dem if be == "cpu" else core.cuda.dem_host
        values, offsets, first_nan = fn(arr, list(sp), s, lo, hi, rho_w, g, b, f32)
    first_nan = np.asarray(first_nan)
    if np.any(first_nan >= 0):
        i = int(np.nonzero(first_nan >= 0)[0][0])
        what = box_names[i] if box_names is not None else f"box {i} {tuple(int(v) for v in b[i])}"
        raise nan_error(name, shape, int(first_nan[i]),
                        f" inside the crop of {what} (bounding box plus the DEM filter halo {radius} voxels)",
                        volume=volume)
    return DemCrops(values, np.asarray(offsets, np.int64), b, radius)


def _reference_boxes(arr, sp, sigma, boxes, clip, rho_w, gamma, radius):
    """The NumPy reference on boxes: each box grown by the halo and clipped to the volume, so 'nearest' at
    the crop border is 'nearest' at the volume border wherever the crop touches it."""
    from ..reference.dem import dem as ref_dem

    vals, offsets, first_nan = [], [0], []
    for b in boxes:
        sl = tuple(slice(max(int(b[a]) - radius[a], 0), min(int(b[a + 3]) + radius[a] + 1, arr.shape[a]))
                   for a in range(3))
        sub = arr[sl]
        nan = np.isnan(sub) if sub.dtype.kind == "f" else None
        if nan is not None and nan.any():
            local = np.unravel_index(int(np.argmax(nan)), sub.shape)
            first_nan.append(int(np.ravel_multi_index(tuple(local[a] + sl[a].start for a in range(3)), arr.shape)))
        else:
            first_nan.append(-1)
        m = ref_dem(sub, sp, sigma=sigma, gamma=gamma, clip_range=clip, reference_density=rho_w)
        inner = tuple(slice(int(b[a]) - sl[a].start, int(b[a + 3]) - sl[a].start + 1) for a in range(3))
        vals.append(m[inner].ravel())
        offsets.append(offsets[-1] + vals[-1].size)
    values = np.concatenate(vals) if vals else np.zeros(0)
    return values, np.asarray(offsets, np.int64), np.asarray(first_nan, np.int64)


def dem_array(ct, spacing_zyx, *, sigma=SIGMA, gamma=GAMMA, clip_range=CLIP_RANGE, reference_density=None,
              dtype=np.float64, backend: str = "auto", name: str = "image") -> np.ndarray:
    """Whole-volume DEM of an array (z, y, x) with spacing (z, y, x) in mm: a host array of ``dtype``."""
    shape = tuple(int(v) for v in ct.shape)
    if len(shape) != 3:
        raise ValueError(f"{name}: expected a 3-D image (z, y, x), got shape {shape}")
    box = np.array([[0, 0, 0, shape[0] - 1, shape[1] - 1, shape[2] - 1]], np.int64)
    crops = dem_boxes(ct, spacing_zyx, box, sigma=sigma, gamma=gamma, clip_range=clip_range,
                      reference_density=reference_density, dtype=dtype, backend=backend, name=name)
    return crops.values.reshape(shape)


def dem(image, *, sigma=SIGMA, gamma=GAMMA, clip_range=CLIP_RANGE, reference_density=None, spacing=None,
        dtype=np.float64, backend: str = "auto"):
    """The DEM of a CT (whole volume).

    Parameters
    ----------
    image
        A 3-D CT in HU: SimpleITK image, :class:`rlnfast.io.Volume`, file path, or array (z, y, x) with
        ``spacing`` (x, y, z) in mm as in SimpleITK (required for an array: sigma is in mm).
    sigma
        Gaussian scale in mm (> 0).
    gamma, clip_range, reference_density
        The elasticity parameters (rlnfast.ops.elasticity).
    dtype
        float64 (default) or float32.
    backend
        'auto', 'cuda', 'cupy', 'cpu' or 'numpy' (the reference).

    Returns the map with the input's geometry (SimpleITK image, Volume, or array).
    """
    vol, kind = as_volume(image, spacing, "image")
    out = dem_array(vol.array, vol.spacing_zyx, sigma=sigma, gamma=gamma, clip_range=clip_range,
                    reference_density=reference_density, dtype=dtype, backend=backend, name=vol.name)
    return give_back(vol, kind, out, "DEM")


def region_boxes(regions) -> tuple[np.ndarray, np.ndarray]:
    """(boxes of the non-empty regions, their region indices) from a :class:`rlnfast.regions.Regions`."""
    bbox = np.asarray(regions.bbox, np.int64).reshape(-1, 6)
    count = np.asarray(regions.count)
    ok = (count > 0) & np.all(bbox[:, 3:] >= bbox[:, :3], axis=1) & np.all(bbox[:, :3] >= 0, axis=1)
    idx = np.nonzero(ok)[0]
    return bbox[idx], idx


def dem_regions(image, regions, *, sigma=SIGMA, gamma=GAMMA, clip_range=CLIP_RANGE, reference_density=None,
                spacing=None, dtype=np.float64, backend: str = "auto") -> DemCrops:
    """DEM on the bounding box of every region of ``regions`` (rlnfast.regions.Regions), in one call.

    Crop i of the result belongs to region i; an empty region gets an empty crop (its box row is -1).
    ``image`` is anything :func:`dem` takes (an array on the label map's grid with ``spacing`` (x, y, z)).
    """
    vol, _ = as_volume(image, spacing, "image")
    if vol.array.shape != regions.label_map.shape:
        raise ValueError(f"{vol.name}: shape {vol.array.shape} differs from the label map's {regions.label_map.shape}")
    boxes, idx = region_boxes(regions)
    names = [f"region label {int(regions.label[i])}" for i in idx]
    crops = dem_boxes(vol.array, vol.spacing_zyx, boxes, sigma=sigma, gamma=gamma, clip_range=clip_range,
                      reference_density=reference_density, dtype=dtype, backend=backend, name=vol.name,
                      box_names=names, volume=vol)
    return _expand(crops, idx, len(regions))


def _expand(crops: DemCrops, idx: np.ndarray, n: int) -> DemCrops:
    """Crops of the non-empty regions ``idx`` placed at their region index (empty crops elsewhere)."""
    if len(idx) == n:
        return crops
    sizes = np.zeros(n, np.int64)
    sizes[idx] = np.diff(crops.offsets)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    boxes = np.full((n, 6), -1, np.int64)
    boxes[idx] = crops.boxes
    return DemCrops(crops.values, offsets, boxes, crops.radius)


def region_values(crops: DemCrops, regions) -> tuple[np.ndarray, np.ndarray]:
    """(values, offsets): each region's voxels of its crop, C order (as ``map[label_map == label]``).

    Vectorised over all crops at once (no per-region Python loop).
    """
    lm = regions.label_map
    n = len(regions)
    sizes = np.diff(crops.offsets)
    total = int(crops.offsets[-1])
    if total == 0:
        return np.zeros(0, crops.values.dtype), np.zeros(n + 1, np.int64)
    rid = np.repeat(np.arange(n, dtype=np.int64), sizes)
    local = np.arange(total, dtype=np.int64) - crops.offsets[:-1][rid]
    b = crops.boxes
    nx = (b[:, 5] - b[:, 2] + 1)[rid]
    ny = (b[:, 4] - b[:, 1] + 1)[rid]
    lx = local % nx
    t = local // nx
    ly = t % ny
    lz = t // ny
    del t, local
    _, vny, vnx = lm.shape
    flat = ((b[:, 0][rid] + lz) * vny + (b[:, 1][rid] + ly)) * vnx + (b[:, 2][rid] + lx)
    sel = lm.ravel()[flat] == np.asarray(regions.label)[rid]
    values = crops.values[sel]
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rid[sel], minlength=n), out=offsets[1:])
    return values, offsets


def _map_paths(out, fmt: str, stem: str = "") -> dict:
    if fmt not in MAP_FORMATS:
        raise ValueError(f"format={fmt!r}: expected one of {', '.join(MAP_FORMATS)}")
    ext = MAP_FORMATS[fmt]
    out_s = str(out)
    p = Path(out)
    if p.is_dir() or out_s.endswith(("/", os.sep)):
        return {k: p / f"{stem}{k}{ext}" for k in ("E", "DEM")}
    return {k: Path(f"{out_s}_{k}{ext}") for k in ("E", "DEM")}


def write_maps(image, out, *, sigma=SIGMA, gamma=GAMMA, clip_range=CLIP_RANGE, reference_density=None, spacing=None,
               format: str = "nii.gz", dtype=np.float32, backend: str = "auto", maps=("E", "DEM")) -> dict:
    """Write E and DEM of a CT with the CT's geometry (NIfTI or NRRD), atomically; returns {map: path}.

    ``out`` is a folder (existing, or ending with '/'): ``<out>/E.nii.gz`` and ``<out>/DEM.nii.gz``;
    otherwise a prefix: ``<out>_E.nii.gz`` and ``<out>_DEM.nii.gz``. ``maps`` picks which are written.
    """
    from ..io import write_volume

    vol, _ = as_volume(image, spacing, "image")
    paths = _map_paths(out, format)
    bad = [m for m in maps if m not in paths]
    if bad:
        raise ValueError(f"maps={tuple(maps)!r}: expected a subset of ('E', 'DEM')")
    written = {}
    if "E" in maps:
        e = elasticity_array(vol.array, gamma=gamma, clip_range=clip_range, reference_density=reference_density,
                             dtype=dtype, backend=backend, name=vol.name)
        written["E"] = write_volume(vol.with_array(e, "E"), paths["E"])
        del e
    if "DEM" in maps:
        d = dem_array(vol.array, vol.spacing_zyx, sigma=sigma, gamma=gamma, clip_range=clip_range,
                      reference_density=reference_density, dtype=dtype, backend=backend, name=vol.name)
        written["DEM"] = write_volume(vol.with_array(d, "DEM"), paths["DEM"])
    return written
