"""Backend registry: which implementations of the ops exist here, and which one a call uses.

Backends, in the order ``auto`` tries them:

``cuda``
    Kernels compiled into ``rlnfast._core.cuda`` (needs a CUDA build and a visible GPU; CuPy or torch for
    device arrays is optional). In an emulated build (``RLNFAST_CUDA=EMULATE``) the same kernels run on CPU
    threads: usable everywhere, reported as emulated, never chosen by ``auto``.
``cupy``
    The same kernels compiled at run time by CuPy (a GPU without a CUDA build of rlnfast).
``cpu``
    C++ with OpenMP in ``rlnfast._core.cpu``: always built, what CI runs.
``numpy``
    The reference: slow, obviously correct, chosen only explicitly (never by ``auto``).

``RLNFAST_BACKEND`` overrides the ``auto`` choice. Asking for a backend that cannot run raises
:class:`BackendUnavailable` with the reason. Nothing here touches a GPU at import: probing happens the
first time a GPU backend is asked about.
"""
from __future__ import annotations

import functools
import os

BACKENDS = ("cuda", "cupy", "cpu", "numpy")
AUTO_ORDER = ("cuda", "cupy", "cpu")


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here; the message says why."""


@functools.lru_cache(maxsize=None)
def _core():
    try:
        from . import _core as core
    except ImportError as exc:  # pragma: no cover - only on a broken install
        raise BackendUnavailable(
            f"rlnfast._core is not built ({exc}); reinstall with `pip install .` from the repository root"
        ) from exc
    return core


def _probe_cpu():
    try:
        _core()
    except BackendUnavailable as exc:
        return False, str(exc)
    return True, f"C++ kernels, {_core().build_info()['openmp']}, {_core().cpu.num_threads()} threads"


@functools.lru_cache(maxsize=None)
def _gpu_count_cupy():
    try:
        import cupy  # noqa: F401
    except Exception as exc:  # ImportError or a broken CUDA install
        return None, f"cupy is not installed ({type(exc).__name__}: {exc}); pip install rlnfast[gpu]"
    try:
        import cupy

        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return None, f"cupy found no usable CUDA device ({exc})"
    if n == 0:
        return None, "cupy found no CUDA device"
    return n, f"{n} CUDA device(s) visible to CuPy"


@functools.lru_cache(maxsize=None)
def _probe(name):
    if name == "numpy":
        return True, "NumPy reference (slow; chosen only explicitly)"
    if name == "cpu":
        return _probe_cpu()
    if name == "cuda":
        ok, why = _probe_cpu()
        if not ok:
            return ok, why
        core = _core()
        info = core.build_info()
        if not info.get("cuda"):
            return False, f"CUDA kernels not compiled ({info.get('cuda_reason')}); rebuild with RLNFAST_CUDA=ON"
        try:
            dev = core.cuda.device_summary()
        except Exception as exc:
            return False, f"CUDA kernels compiled but the CUDA runtime failed: {exc}"
        if not dev:
            return False, "CUDA kernels compiled but no CUDA device is visible"
        if info.get("cuda_emulated"):
            san = info.get("sanitizers") or "no sanitizers"
            return True, f"emulated CUDA kernels on CPU threads ({dev}; {san}; RLNFAST_CUDA=EMULATE build, for tests)"
        return True, f"compiled CUDA kernels on {dev}"
    if name == "cupy":
        n, why = _gpu_count_cupy()
        return n is not None, why
    raise ValueError(f"backend {name!r}: expected one of auto, {', '.join(BACKENDS)}")


def available(name: str) -> tuple[bool, str]:
    """(usable, reason) for one backend name."""
    return _probe(name)


# Ops that a GPU backend runs on the host with the C++ CPU kernel (op -> why), reported by status() and
# rlnfast.build_info().
HOST_OPS = {"size": "node size (class size): C++ CPU kernel on the host (regions as bounding-box crops; "
                    "a few rows per slice, no GPU kernel)"}


def status() -> dict:
    """Every backend with whether it is usable and why (probes the GPU lazily, once); the GPU backends also
    list ``host_ops``, the ops they run on the host (``HOST_OPS``)."""
    out = {name: {"available": ok, "reason": why} for name in BACKENDS for ok, why in [_probe(name)]}
    for name in ("cuda", "cupy"):
        out[name]["host_ops"] = dict(HOST_OPS)
    return out


def resolve(backend: str | None = "auto") -> str:
    """Turn 'auto' (or None) into a concrete, usable backend name; raise BackendUnavailable otherwise."""
    if backend is None or backend == "auto":
        env = os.environ.get("RLNFAST_BACKEND", "").strip().lower()
        if env and env != "auto":
            return resolve(env)
        reasons = []
        for name in AUTO_ORDER:
            ok, why = _probe(name)
            if ok and name == "cuda" and is_emulated():
                ok, why = False, "emulated CUDA build (CPU threads): chosen only explicitly"
            if ok:
                return name
            reasons.append(f"{name}: {why}")
        raise BackendUnavailable("no backend is usable: " + "; ".join(reasons))
    name = str(backend).lower()
    if name not in BACKENDS:
        raise ValueError(f"backend {backend!r}: expected one of auto, {', '.join(BACKENDS)}")
    ok, why = _probe(name)
    if not ok:
        raise BackendUnavailable(f"backend {name!r} is not available: {why}")
    return name


def is_emulated() -> bool:
    """True when the compiled cuda backend is the CPU-thread emulation (RLNFAST_CUDA=EMULATE)."""
    try:
        return bool(_core().build_info().get("cuda_emulated"))
    except BackendUnavailable:
        return False


def core():
    """The compiled module (raises BackendUnavailable when it is not built)."""
    return _core()
