"""Shared test fixtures: the backend fixture (skips an absent backend and says why), the shared data
folder, the one tolerance table every parity test uses, and seeded synthetic inputs.

Reference data, Chromium and torch/nnunetv2 are optional outside CI: a test that needs one of them and does
not find it SKIPS with one line saying what is missing and how to get it; under ``CI=true`` the same absence
is a FAILURE naming it, so CI never skips them silently (:func:`missing`)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from rlnfast import _backends

ROOT = Path(__file__).resolve().parents[1]
# Reference data nobody on the project wrote: env RLNFAST_SHARED (the folder holding data/), else ../shared
# beside the repository root.
SHARED = Path(os.environ.get("RLNFAST_SHARED") or (ROOT.parent / "shared"))
DATA = SHARED / "data"
IN_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")

# Where each reference data set comes from (shown when it is missing).
DATA_ORIGINS = {
    "pyradiomics": "pyradiomics' test cases and baseline/ CSVs (github.com/AIM-Harvard/pyradiomics, data/)",
    "ibsi": "IBSI 1 digital phantom and reference values (github.com/theibsi/data_sets)",
    "stats_golden": "R pROC/rms golden values (the project's shared data folder, stats_golden/)",
    "totalsegmentator_example": "TotalSegmentator's example CT and masks",
}
DATA_HOWTO = ("set RLNFAST_SHARED to the folder that holds data/ (or put that folder at ../shared beside the "
              "repository); see README.md, 'Running the tests'")


def missing(what: str, how: str, module_level: bool = False):
    """Skip (one line: what is missing, how to get it), or fail naming it under CI=true."""
    line = f"{what} is missing: {how}"
    if IN_CI:
        pytest.fail(f"CI=true and {line}", pytrace=False)
    pytest.skip(line, allow_module_level=module_level)


def require_module(name: str, how: str, module_level: bool = False):
    """Import and return module ``name``; absent: skip saying ``how`` to install it (fail under CI=true)."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"Python module {name!r}", how, module_level)


PYRADIOMICS_HOWTO = ("pip install versioneer wheel numpy && pip install --no-build-isolation pyradiomics "
                     "(bash tests/run_tests.sh does it)")


def data_path(*parts) -> Path:
    """A file of the reference data (``$RLNFAST_SHARED/data`` or ``../shared/data``). Absent: the test skips
    saying which file and how to get it; under CI=true it fails naming it."""
    p = DATA.joinpath(*parts)
    if not p.exists():
        origin = DATA_ORIGINS.get(str(parts[0]) if parts else "", "")
        # module_level: a module that reads the data while collecting is skipped whole, saying why
        missing(f"reference data {p}" + (f" ({origin})" if origin else ""), DATA_HOWTO, module_level=True)
    return p


def chromium() -> str:
    """Path of a Chromium binary; absent: skip (fail under CI=true) saying how to install it."""
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    missing("a chromium binary on PATH (renders the HTML report)",
            "apt-get install -y chromium (as root), or RLNFAST_INSTALL_SYSTEM=1 bash tests/run_tests.sh")


def require_seg() -> None:
    """torch and nnunetv2; absent: skip (fail under CI=true) saying how to install them."""
    import importlib.util

    absent = [m for m in ("torch", "nnunetv2") if importlib.util.find_spec(m) is None]
    if absent:
        missing(f"{' and '.join(absent)} (the segmentation extra)",
                'pip install "rlnfast[seg]", or bash tests/run_tests.sh (installs torch and nnunetv2 with pip)')

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


def assert_close(actual, expected, backend, what=""):
    """Compare with the tolerance of ``backend``; NaN must match NaN."""
    rtol, atol_rel = TOLERANCE[backend]
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = np.nanmax(np.abs(expected)) if np.any(np.isfinite(expected)) else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol_rel * scale, equal_nan=True,
                               err_msg=f"{what} ({backend})")
