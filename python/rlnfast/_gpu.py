"""Device-array plumbing shared by the GPU backends: no import of cupy or torch until a GPU path runs.

Accepts CuPy arrays, anything with ``__cuda_array_interface__`` (Numba, torch CUDA tensors) and DLPack
producers; host arrays are copied to the device once.
"""
from __future__ import annotations

import numpy as np


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def is_device_array(x) -> bool:
    """True for arrays that live on a CUDA device (CuPy, torch CUDA tensors, CUDA array interface).

    torch is asked first and through ``is_cuda``: on a CUDA tensor that requires grad, even
    ``hasattr(t, "__cuda_array_interface__")`` raises (RuntimeError, not AttributeError).
    """
    if isinstance(x, np.ndarray):
        return False
    if _is_torch(x):
        return bool(getattr(x, "is_cuda", False))
    try:
        return hasattr(x, "__cuda_array_interface__")
    except Exception:  # a property that raises for another reason: a device array all the same
        return True


def device_of(x) -> int:
    """CUDA device ordinal that holds a device array (CuPy ``.device.id``, torch ``.device.index``, or the
    pointer's device); 0 when unknown."""
    dev = getattr(x, "device", None)
    if _is_torch(x):
        idx = getattr(dev, "index", None)
        return int(idx) if idx is not None else 0
    if dev is not None and hasattr(dev, "id"):
        return int(dev.id)
    try:
        cai = x.__cuda_array_interface__
    except Exception:
        return 0
    cp = cupy()
    ptr = int(cai["data"][0])
    if ptr == 0:
        return 0
    return int(cp.cuda.runtime.pointerGetAttributes(ptr).device)


def cupy():
    try:
        import cupy as cp
    except ImportError as exc:  # pragma: no cover - GPU machines only
        raise ImportError("this GPU path needs CuPy: pip install 'rlnfast[gpu]'") from exc
    return cp


def to_cupy(x, dtype=None):
    """A CuPy view of a device array (zero copy through the CUDA array interface or DLPack) or a host copy."""
    cp = cupy()
    if isinstance(x, cp.ndarray):
        arr = x
    elif _is_torch(x) and getattr(x, "is_cuda", False):
        arr = cp.from_dlpack(x.detach())   # detach: a tensor that requires grad has no array interface
    elif is_device_array(x):
        with cp.cuda.Device(device_of(x)):
            arr = cp.asarray(x)
    else:
        arr = cp.asarray(np.asarray(x))
    with cp.cuda.Device(arr.device.id):   # any cast or copy stays on the array's own device
        if dtype is not None and arr.dtype != dtype:
            arr = arr.astype(dtype)
        return cp.ascontiguousarray(arr)


def to_host(x) -> np.ndarray:
    """A NumPy array from a host or device array."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "get"):
        return x.get()
    if _is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)
