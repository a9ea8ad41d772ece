"""Shared test fixtures: the backend fixture (skips an absent backend and says why), the shared data
folder, the one tolerance table every parity test uses, and seeded synthetic inputs."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from rlnfast import _backends

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RLNFAST_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"

# One tolerance table for every backend against the NumPy reference: (rtol, atol_relative_to_scale).
# Float64 paths must agree to 1e-9 relative; GPU kernels also run in float64 for first-order.
TOLERANCE = {
    "numpy": (0.0, 0.0),
    "cpu": (1e-9, 1e-12),
    "cuda": (1e-9, 1e-12),
    "cupy": (1e-9, 1e-12),
}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: longer checks; CI runs them, -m 'not slow' skips them locally")


def _available_or_skip(name):
    ok, why = _backends.available(name)
    if not ok:
        pytest.skip(f"backend {name!r} not available here: {why}")
    return name


@pytest.fixture(params=["numpy", "cpu", "cuda", "cupy"])
def backend(request):
    """Every backend by name; an absent one is skipped with the reason (no GPU, not compiled, no CuPy)."""
    return _available_or_skip(request.param)


@pytest.fixture(params=["cpu", "cuda", "cupy"])
def fast_backend(request):
    """Every backend except the NumPy reference (for parity tests against it)."""
    return _available_or_skip(request.param)


@pytest.fixture(params=["cuda", "cupy"])
def gpu_backend(request):
    """The GPU backends; skipped with the reason where there is no GPU, CUDA build or CuPy."""
    return _available_or_skip(request.param)


def data_path(*parts) -> Path:
    """A file in ../shared/data; the test fails (not skips) when the shared data is missing."""
    p = DATA.joinpath(*parts)
    assert p.exists(), f"shared test data missing: {p} (expected ../shared/data beside the repository)"
    return p


def assert_close(actual, expected, backend, what=""):
    """Compare with the tolerance of ``backend``; NaN must match NaN."""
    rtol, atol_rel = TOLERANCE[backend]
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = np.nanmax(np.abs(expected)) if np.any(np.isfinite(expected)) else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol_rel * scale, equal_nan=True,
                               err_msg=f"{what} ({backend})")
