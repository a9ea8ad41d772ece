"""The elasticity image E of a CT, voxelwise, on any backend (features.md, "Elasticity image E").

    h   = clip(HU, clip_lo, clip_hi)                      default clipRange [-1000, 3071]
    rho = max(Schneider(h + 1000), 1)                     kg/m^3, piecewise-linear (k-Wave hounsfield2density)
    E   = 1000 ((rho / rho_w)^gamma - 1)                  rho_w = rho(HU 0) = 1011.886114911114, gamma = 2

E is a per-mille stiffness contrast against water-equivalent soft tissue: HU -50 -> -87.7, 0 -> 0,
40 -> 73.1, 100 -> 185.9. The formula is written once in csrc/common/dem_math.h (C++, CUDA, CuPy) and
once in NumPy in rlnfast.reference.dem (the reference).
"""
from __future__ import annotations

import math
import os

import numpy as np

from .. import _backends, _gpu
from ..io import Volume, parse_spacing, read_volume

GAMMA = 2.0
CLIP_RANGE = (-1000.0, 3071.0)
RHO_WATER = 1011.886114911114   # rho(HU 0), kg/m^3


def elasticity_params(gamma=GAMMA, clip_range=CLIP_RANGE, reference_density=None) -> tuple:
    """(clip_lo, clip_hi, rho_w, gamma) validated: ValueError naming the bad argument otherwise."""
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.number)) or not math.isfinite(gamma) \
            or gamma <= 0:
        raise ValueError(f"gamma={gamma!r}: expected a finite number > 0 (the density power law exponent)")
    try:
        lo, hi = (float(v) for v in clip_range)
    except (TypeError, ValueError):
        raise ValueError(f"clipRange={clip_range!r}: expected two numbers [low, high] in HU") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError(f"clipRange={clip_range!r}: expected two finite numbers with low <= high (HU)")
    if reference_density is None:
        rho_w = RHO_WATER
    else:
        if isinstance(reference_density, bool) or not isinstance(reference_density, (int, float, np.number)) \
                or not math.isfinite(reference_density) or reference_density <= 0:
            raise ValueError(f"referenceDensity={reference_density!r}: expected a finite density > 0 (kg/m^3) "
                             "or None for rho(HU 0)")
        rho_w = float(reference_density)
    return lo, hi, rho_w, float(gamma)


def params_from_settings(settings: dict) -> dict:
    """Keyword arguments of :func:`elasticity` from pyradiomics-style settings (gamma, clipRange, referenceDensity)."""
    return {"gamma": settings.get("gamma", GAMMA) if settings.get("gamma") is not None else GAMMA,
            "clip_range": tuple(settings.get("clipRange") or CLIP_RANGE),
            "reference_density": settings.get("referenceDensity")}


def as_volume(image, spacing=None, name: str = "image", *, spacing_required: bool = True) -> tuple[Volume, str]:
    """(Volume, kind) of an input image; kind is 'sitk', 'volume', 'path' or 'array' (what to give back).

    Arrays are (z, y, x) with ``spacing`` (x, y, z) in mm as in SimpleITK, required unless
    ``spacing_required=False`` (E is voxel-wise); anything but 3-D is refused.
    """
    if isinstance(image, Volume):
        kind = "volume"
    elif isinstance(image, (str, os.PathLike)):
        kind = "path"
    elif type(image).__module__.startswith("SimpleITK"):
        kind = "sitk"
        if image.GetDimension() != 3:
            raise ValueError(f"{name}: expected a 3-D image, got a {image.GetDimension()}-D image of size "
                             f"{image.GetSize()}")
    else:
        kind = "array"
        arr = _gpu.to_host(image) if _gpu.is_device_array(image) else np.asarray(image)
        if arr.ndim != 3:
            raise ValueError(f"{name}: expected a 3-D image (z, y, x), got {arr.ndim}-D with shape {arr.shape}")
        image = arr
    if spacing is not None and kind != "array":
        vol = read_volume(image, name=name)
        if not np.allclose(vol.spacing, parse_spacing(spacing, name), rtol=1e-6, atol=0):
            raise ValueError(f"{name}: spacing {tuple(spacing)} differs from the image's own spacing {vol.spacing}")
        return vol, kind
    vol = read_volume(image, spacing=spacing, name=name, spacing_required=spacing_required)
    if vol.array.ndim != 3:  # pragma: no cover - read_volume guarantees it
        raise ValueError(f"{name}: expected a 3-D image")
    return vol, kind


def ct_array(arr: np.ndarray, name: str = "image") -> np.ndarray:
    """A C-contiguous CT array of a dtype the kernels take: rlnfast.io.kernel_array's one rule (bool as
    uint8, float16 as float32, uint64 as int64 when it fits, others refused by name)."""
    from ..io import kernel_array

    return np.ascontiguousarray(kernel_array(np.asarray(arr), name))


def give_back(vol: Volume, kind: str, arr: np.ndarray, name: str):
    """The result with the input's geometry: a SimpleITK image for SimpleITK input, a Volume for a Volume
    or a path, the array otherwise."""
    if kind == "sitk":
        return vol.to_sitk(arr)
    if kind in ("volume", "path"):
        return vol.with_array(arr, name=name)
    return arr


def nan_error(name: str, shape, flat: int, where: str = "", volume=None, origin=(0, 0, 0)) -> ValueError:
    """The error for a NaN voxel at flat index ``flat`` of an array of ``shape`` that starts at voxel ``origin``
    (z, y, x) of the volume: named by its index in the volume (and its physical position, given ``volume``)."""
    from ..io import voxel_text

    idx = tuple(int(i) + int(o) for i, o in zip(np.unravel_index(int(flat), shape), origin))
    return ValueError(f"{name}: NaN voxel at {voxel_text(idx, volume)}{where}; expected finite HU (fill or crop "
                      "NaN voxels before computing elasticity maps)")


def elasticity_array(ct: np.ndarray, *, gamma=GAMMA, clip_range=CLIP_RANGE, reference_density=None,
                     dtype=np.float64, backend="auto", name="image", volume=None, origin=(0, 0, 0)) -> np.ndarray:
    """E of every voxel of an array of any shape (NumPy or device array), as a host array of ``dtype``.
    A NaN voxel is a ValueError naming it; a 3-D ``ct`` that is a crop of ``volume`` starting at voxel
    ``origin`` (z, y, x) names it by its index in the volume and its physical position."""
    lo, hi, rho_w, g = elasticity_params(gamma, clip_range, reference_density)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype={dtype}: expected float32 or float64")
    be = _backends.resolve(backend)
    f32 = dtype == np.float32
    if be == "cupy" or (be == "cuda" and _gpu.is_device_array(ct)):
        from .._cupy.dem import elasticity as cupy_elasticity

        out, bad = cupy_elasticity(ct, lo, hi, rho_w, g, f32)
        out = out.get()
        shape = out.shape
    else:
        arr = ct_array(_gpu.to_host(ct))
        shape = arr.shape
        if be == "numpy":
            from ..reference.dem import elasticity as ref

            out = ref(arr, gamma=g, clip_range=(lo, hi), reference_density=rho_w).astype(dtype, copy=False)
            nan = np.isnan(arr) if arr.dtype.kind == "f" else None
            bad = int(np.argmax(nan.ravel())) if nan is not None and nan.any() else -1
        else:
            a3 = arr.reshape((1, 1, arr.size)) if arr.ndim != 3 else arr
            fn = _backends.core().cpu.elasticity if be == "cpu" else _backends.core().cuda.elasticity_host
            out, bad = fn(a3, lo, hi, rho_w, g, f32)
            out = out.reshape(shape)
    if bad >= 0:
        if len(shape) != 3:
            volume, origin = None, (0,) * len(shape)
        raise nan_error(name, shape, bad, volume=volume, origin=origin)
    return out


def elasticity(image, *, gamma=GAMMA, clip_range=CLIP_RANGE, reference_density=None, spacing=None,
               dtype=np.float64, backend: str = "auto"):
    """The elasticity image E of a CT (whole volume).

    Parameters
    ----------
    image
        A 3-D CT in HU: a SimpleITK image, a :class:`rlnfast.io.Volume`, a file path or an array (z, y, x).
    gamma, clip_range, reference_density
        The power-law exponent (> 0), the HU clip range, and rho_w in kg/m^3 (None: rho(HU 0)).
    dtype
        float64 (default) or float32.
    backend
        'auto', 'cuda', 'cupy', 'cpu' or 'numpy' (the reference).

    Returns E with the input's geometry: a SimpleITK image for a SimpleITK image, a Volume for a Volume
    or a path, an array for an array. NaN voxels are a ValueError naming the first one.
    """
    vol, kind = as_volume(image, spacing, "image", spacing_required=False)   # E is voxel-wise
    out = elasticity_array(vol.array, gamma=gamma, clip_range=clip_range, reference_density=reference_density,
                           dtype=dtype, backend=backend, name=vol.name, volume=vol)
    return give_back(vol, kind, out, "elasticity")
