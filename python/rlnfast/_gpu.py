"""Device-array plumbing shared by the GPU backends: no import of cupy or torch until a GPU path runs.

Accepts CuPy arrays, anything with ``__cuda_array_interface__`` (Numba, torch CUDA tensors) and DLPack
producers; host arrays are copied to the device once.
"""
from __future__ import annotations

import numpy as np


def is_device_array(x) -> bool:
    """True for arrays that live on a CUDA device (CuPy, torch CUDA tensors, CUDA array interface)."""
    if hasattr(x, "__cuda_array_interface__"):
        return True
    mod = type(x).__module__
    if mod.startswith("torch"):
        return getattr(x, "is_cuda", False)
    return False


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
    elif type(x).__module__.startswith("torch") and getattr(x, "is_cuda", False):
        arr = cp.from_dlpack(x.detach())
    elif hasattr(x, "__cuda_array_interface__"):
        arr = cp.asarray(x)
    else:
        arr = cp.asarray(np.asarray(x))
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    return cp.ascontiguousarray(arr)


def to_host(x) -> np.ndarray:
    """A NumPy array from a host or device array."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "get"):
        return x.get()
    if type(x).__module__.startswith("torch"):
        return x.detach().cpu().numpy()
    return np.asarray(x)
