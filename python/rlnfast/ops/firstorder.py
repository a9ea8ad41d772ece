"""First-order features of every region of a ragged batch in one call, on any backend.

Exactly pyradiomics' first-order class (``radiomics/firstorder.py``), feature by feature; the formulas
(rlnfast.spec.firstorder.FEATURE_DOCS) use X = the region's N voxel values, P(i) = the fraction of voxels in occupied bin i after
pyradiomics' binning (binWidth edges ``arange(min - min % w, max + 2w, w)`` or binCount edges of
``numpy.histogram``, ``numpy.digitize`` semantics), c = voxelArrayShift, eps = numpy.spacing(1).
"""
from __future__ import annotations

import numpy as np

from .. import _backends, _gpu
from ..io import float64_values
from ..spec.firstorder import DEFAULT_FEATURES, FEATURE_DOCS, FEATURES, MAX_BIN_EDGES  # noqa: F401


def binning_args(bin_width=25.0, bin_count=None, value_dtype=None):
    """(bin_mode, bin_width, bin_count, edges_f32) for the kernels, validated."""
    if bin_count is not None:
        if int(bin_count) != bin_count or bin_count < 1:
            raise ValueError(f"binCount={bin_count!r}: expected an integer >= 1")
        mode, width, count = 1, 1.0, int(bin_count)
    else:
        if bin_width is None or not np.isfinite(bin_width) or bin_width <= 0:
            raise ValueError(f"binWidth={bin_width!r}: expected a finite number > 0")
        mode, width, count = 0, float(bin_width), 0
    # float16 images are float32 images by the one dtype rule (rlnfast.io.kernel_array): binned alike
    f32 = value_dtype is not None and np.dtype(value_dtype) in (np.float32, np.float16)
    return mode, width, count, bool(f32)


def firstorder(values, offsets, *, bin_width=25.0, bin_count=None, voxel_array_shift=0.0, voxel_volume=1.0,
               value_dtype=None, backend="auto") -> np.ndarray:
    """First-order features of every region: an array [n_regions, len(FEATURES)] on the host.

    Parameters
    ----------
    values, offsets
        Ragged batch: region r's voxel values are ``values[offsets[r]:offsets[r+1]]`` (float64; NumPy,
        CuPy or torch CUDA arrays; device arrays stay on the device for the GPU backends).
    bin_width, bin_count
        pyradiomics binning: binCount wins when given.
    voxel_array_shift
        pyradiomics voxelArrayShift ``c`` (Energy, TotalEnergy, RootMeanSquared only).
    voxel_volume
        mm^3 per voxel, for TotalEnergy.
    value_dtype
        The image's dtype before gathering; a float32 image is binned in float32 with binCount, as
        pyradiomics does.
    backend
        'auto', 'cuda', 'cupy', 'cpu' or 'numpy'.

    An empty region gives a row of NaN. See ``FEATURE_DOCS`` for each formula.
    """
    name = _backends.resolve(backend)
    mode, width, count, f32 = binning_args(bin_width, bin_count, value_dtype)
    if not _gpu.is_device_array(values):
        values = float64_values(values, "values")   # the one dtype rule: exact in float64 or refused by name
    _check_finite(values)
    shift = float(voxel_array_shift)
    vol = float(voxel_volume)
    if name == "numpy":
        from ..reference.firstorder import firstorder as ref

        vd = np.float32 if f32 else None
        return ref(_gpu.to_host(values), _gpu.to_host(offsets), bin_width=width if mode == 0 else None,
                   bin_count=count if mode == 1 else None, voxel_array_shift=shift, voxel_volume=vol,
                   value_dtype=vd)
    if name == "cpu":
        core = _backends.core()
        v = np.ascontiguousarray(_gpu.to_host(values), dtype=np.float64)
        o = np.ascontiguousarray(_gpu.to_host(offsets), dtype=np.int64)
        _check_offsets(o, len(v))
        return _check_binned(core.cpu.firstorder(v, o, mode, width, count, f32, shift, vol), o, v, mode, width,
                             count)
    if name == "cuda":
        core = _backends.core()
        if _gpu.is_device_array(values):
            cp = _gpu.cupy()
            v = _gpu.to_cupy(values, cp.float64)
            with cp.cuda.Device(v.device.id):   # outputs, offsets and the stream on the values' device
                o = _gpu.to_cupy(offsets, cp.int64)
                if o.ndim != 1 or len(o) < 1:
                    raise ValueError("offsets: expected a 1-D int array of n_regions + 1 entries")
                out = cp.empty((len(o) - 1, len(FEATURES)), dtype=cp.float64)
                stream = cp.cuda.get_current_stream()
                # the kernel checks the device offsets (0 .. len(values), non-decreasing) before using them
                core.cuda.firstorder(v.data.ptr, len(v), o.data.ptr, len(o) - 1, mode, width, count, f32, shift,
                                     vol, out.data.ptr, stream.ptr)
                stream.synchronize()
                return _check_binned(out.get(), _gpu.to_host(o), None, mode, width, count)
        v = np.ascontiguousarray(values, dtype=np.float64)
        o = np.ascontiguousarray(offsets, dtype=np.int64)
        _check_offsets(o, len(v))
        return _check_binned(core.cuda.firstorder_host(v, o, mode, width, count, f32, shift, vol), o, v, mode,
                             width, count)
    if name == "cupy":
        from .._cupy.firstorder import firstorder as cupy_firstorder

        return _check_binned(cupy_firstorder(values, offsets, mode, width, count, f32, shift, vol),
                             _gpu.to_host(offsets), None, mode, width, count)
    raise AssertionError(name)  # pragma: no cover


def _check_offsets(o, n_values):
    if o.ndim != 1 or len(o) < 1 or o[0] != 0 or o[-1] != n_values or np.any(np.diff(o) < 0):
        raise ValueError(f"offsets: expected a non-decreasing int array from 0 to len(values)={n_values}")


def _check_finite(values):
    """NaN/inf values cannot be sorted or binned: refused on every backend (the kernels would give NaN rows)."""
    if _gpu.is_device_array(values):
        cp = _gpu.cupy()
        bad = int(cp.count_nonzero(~cp.isfinite(_gpu.to_cupy(values, cp.float64))))
    else:
        bad = int(np.count_nonzero(~np.isfinite(np.asarray(values, dtype=np.float64))))
    if bad:
        raise ValueError(f"values: {bad} NaN/inf value(s); expected finite intensities "
                         "(extract's setting nonFinite: drop leaves them out)")


def _check_binned(out, offsets, values, mode, width, count):
    """The kernels give Entropy/Uniformity NaN for a non-empty region they cannot bin exactly (more than
    MAX_BIN_EDGES edges, an edge step of 0 at the values' magnitude, binCount edges that do not increase):
    raise ValueError naming the region and the reason instead of returning a number nobody asked for."""
    n = np.diff(np.asarray(offsets))
    bad = np.nonzero((n > 0) & np.isnan(out[:, FEATURES.index("Entropy")]))[0]
    if len(bad):
        r = int(bad[0])
        lo, hi = float(out[r, FEATURES.index("Minimum")]), float(out[r, FEATURES.index("Maximum")])
        how = f"binWidth={width!r}" if mode == 0 else f"binCount={count}"
        raise ValueError(f"region {r} (values in [{lo!r}, {hi!r}]) cannot be binned exactly with {how}: more than "
                         f"{MAX_BIN_EDGES} bin edges, or bin edges that do not increase at this magnitude "
                         f"({len(bad)} region(s) in all)")
    return out
