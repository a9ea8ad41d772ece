"""rlnfast: fast, pyradiomics-exact CT radiomics of lymph nodes.

Elasticity (E) and differential elasticity (DEM) maps, pyradiomics-exact first-order features and
multi-scale fractal dimensions for thousands of regions in one pass, on CUDA, CuPy, C++ CPU and NumPy
backends. Importing rlnfast never touches a GPU.
"""
from __future__ import annotations

from ._version import __version__  # noqa: F401

from ._backends import BackendUnavailable, resolve as resolve_backend  # noqa: F401
from .extract import extract  # noqa: E402,F401  (the function shadows the submodule name on purpose)


def build_info() -> dict:
    """What was compiled into ``rlnfast._core`` and, per backend, whether it is usable and why.

    Probes the GPU backends on first call (lazily, never at import).
    """
    from . import _backends

    try:
        info = dict(_backends.core().build_info())
    except BackendUnavailable as exc:
        info = {"cpu": False, "cuda": False, "error": str(exc)}
    info["version"] = __version__
    info["backends"] = _backends.status()
    info["host_ops"] = dict(_backends.HOST_OPS)   # ops the cuda/cupy backends run on the host (C++ CPU kernel)
    return info


_DEVICE_STATS_KEYS = ("h2d_copies", "d2h_copies", "allocations", "synchronizations", "launches")


def device_stats(reset: bool = False) -> dict:
    """Device traffic of the compiled CUDA kernels since the last reset: counts of host-to-device and
    device-to-host copies, device allocations, stream synchronisations and kernel launches.

    Counted in the launch/copy wrappers of ``csrc/cuda`` (a real GPU and the emulated build alike); the CuPy
    backend's own traffic is not counted. ``reset=True`` returns the counts and sets them to zero. Without
    compiled CUDA kernels every count is 0.
    """
    from . import _backends

    try:
        core = _backends.core()
    except BackendUnavailable:
        core = None
    if core is None or not core.build_info().get("cuda"):
        return {k: 0 for k in _DEVICE_STATS_KEYS}
    return dict(core.cuda.device_stats(bool(reset)))


def __getattr__(name):
    # Lazy imports keep `import rlnfast` cheap (no pandas/SimpleITK until used).
    if name in ("stats", "io", "regions", "ops", "cohort", "segmentation", "params"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'rlnfast' has no attribute {name!r}")
