"""The device-resident pipeline of the cuda backend (issue 12 item 2, rlnfast._device_pipeline): one upload of the
CT and the label map per case, regions, gather, E, DEM, fractal crops and every feature on the device, only the
results copied back. Checked against the cpu backend (1e-9 relative) and by counting device traffic with
rlnfast.device_stats(): uploads, downloads and synchronisations do not depend on the number of regions, and a
warm pipeline allocates nothing. Runs on a real GPU and on the emulated build (tests/run_emulated.sh); inputs are
small because the emulation runs every CUDA thread as an OS thread."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import rlnfast
from rlnfast import _backends

FULL = {"imageType": {"Original": {}, "Elasticity": {}, "DEM": {}},
        "featureClass": {"firstorder": None, "fractal": None}, "setting": {"binWidth": 10}}


def _skip_unless_cuda():
    ok, why = _backends.available("cuda")
    if not ok:
        pytest.skip(f"backend 'cuda' not available here: {why}")
    if not hasattr(_backends.core().cuda, "Pipeline"):
        pytest.skip("this build of rlnfast has no device pipeline")


def _case(n_regions, cells=(2, 10, 10), cell=4, seed=0, dtype=np.int16):
    """A CT with n_regions irregular regions, one per cell of a grid (each a random subset of a random box of
    its cell, never empty), labels 1..n_regions in a scrambled order."""
    rng = np.random.default_rng(seed)
    shape = tuple(c * cell for c in cells)
    ct = rng.integers(-150, 250, shape).astype(dtype)
    labels = np.zeros(shape, np.int64)
    slots = rng.permutation(int(np.prod(cells)))[:n_regions]
    for lab, slot in enumerate(slots, start=1):
        cz, cy, cx = np.unravel_index(slot, cells)
        lo = rng.integers(0, 2, 3)
        hi = lo + rng.integers(1, cell - 1, 3)
        sub = rng.random(tuple(int(h - l) for l, h in zip(lo, hi))) < 0.7
        sub.flat[0] = True
        z0, y0, x0 = cz * cell + lo[0], cy * cell + lo[1], cx * cell + lo[2]
        view = labels[z0:z0 + sub.shape[0], y0:y0 + sub.shape[1], x0:x0 + sub.shape[2]]
        view[sub] = lab
    return ct, labels


def _assert_tables_equal(got: pd.DataFrame, ref: pd.DataFrame):
    assert list(got.columns) == list(ref.columns)
    for c in ref.columns:
        if c == "diagnostics_Configuration_Backend":
            continue
        a, b = got[c].to_numpy(), ref[c].to_numpy()
        if np.issubdtype(b.dtype, np.floating):
            np.testing.assert_allclose(a.astype(float), b, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=c)
        else:
            for x, y in zip(a, b):   # tuples and lists of numbers (diagnostics, also as text) compare as numbers
                if isinstance(x, str) and isinstance(y, str) and x.startswith("[") and y.startswith("["):
                    x, y = json.loads(x.replace("nan", "NaN")), json.loads(y.replace("nan", "NaN"))
                try:
                    xa, ya = np.asarray(x, float), np.asarray(y, float)
                except (TypeError, ValueError):
                    assert str(x) == str(y), c
                    continue
                assert xa.shape == ya.shape, c
                np.testing.assert_allclose(xa, ya, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=c)


def test_device_pipeline_parity_with_cpu_cuda():
    """Original + E + DEM first-order and every fractal feature of a small multi-region volume (anisotropic
    spacing): the cuda backend's device pipeline equals the cpu backend to 1e-9 relative, column for column,
    and it moved the case as the pipeline does (3 uploads, 2 downloads, 2 synchronisations)."""
    _skip_unless_cuda()
    ct, labels = _case(6, cells=(1, 2, 3), cell=7, seed=1)
    sp = (0.8, 0.7, 2.0)
    ref = rlnfast.extract(ct, labels, FULL, spacing=sp, backend="cpu")
    rlnfast.device_stats(reset=True)
    got = rlnfast.extract(ct, labels, FULL, spacing=sp, backend="cuda")
    c = rlnfast.device_stats(reset=True)
    assert (c["h2d_copies"], c["d2h_copies"], c["synchronizations"]) == (3, 2, 2), c
    assert len(ref) == 6
    assert any(col.startswith("DEM_original_firstorder_") for col in ref.columns)
    assert {"original_fractal_MaskFD", "E_original_fractal_DBCFD", "DEM_original_fractal_DBCFD"} <= set(ref.columns)
    assert (np.isfinite(ref[["original_fractal_MaskFD", "DEM_original_fractal_DBCFD"]].to_numpy(float)).sum(0) >= 4).all()
    _assert_tables_equal(got, ref)


def test_device_pipeline_float32_bincount_and_label_subset_cuda():
    """A float32 CT with binCount (float32 bin edges, as pyradiomics) and a chosen subset of labels."""
    _skip_unless_cuda()
    ct, labels = _case(9, cells=(1, 3, 3), seed=2, dtype=np.float32)
    ct = ct * np.float32(0.37)
    params = {"imageType": {"Original": {}}, "featureClass": {"firstorder": None},
              "setting": {"binCount": 7, "label": [2, 5, 7]}}
    ref = rlnfast.extract(ct, labels, params, spacing=(1, 1, 1), backend="cpu")
    got = rlnfast.extract(ct, labels, params, spacing=(1, 1, 1), backend="cuda")
    assert list(got["label"]) == [2, 5, 7]
    _assert_tables_equal(got, ref)


def test_device_pipeline_nonfinite_falls_back_cuda():
    """A NaN inside a region takes the per-op path, which drops it (nonFinite: drop) or names it, as on cpu."""
    _skip_unless_cuda()
    ct, labels = _case(4, cells=(1, 2, 2), seed=3, dtype=np.float64)
    z, y, x = np.argwhere(labels == 2)[0]
    ct[z, y, x] = np.nan
    params = {"imageType": {"Original": {}}, "featureClass": {"firstorder": None}, "setting": {"nonFinite": "drop"}}
    ref = rlnfast.extract(ct, labels, params, spacing=(1, 1, 1), backend="cpu")
    got = rlnfast.extract(ct, labels, params, spacing=(1, 1, 1), backend="cuda")
    _assert_tables_equal(got, ref)
    with pytest.raises(ValueError, match="NaN"):
        rlnfast.extract(ct, labels, {"imageType": {"Original": {}}, "featureClass": {"firstorder": None}},
                        spacing=(1, 1, 1), backend="cuda")


# Region counts of the two cases: the emulation runs each block's threads as OS threads (a first-order block
# costs about half a second on two loaded cores), so it compares fewer regions than a GPU does.
def _sizes(gpu, emulated):
    return emulated if _backends.is_emulated() else gpu


@pytest.mark.parametrize("params,sizes", [
    ({"imageType": {"Original": {}}, "featureClass": {"firstorder": None}}, ((10, 200), (3, 30))),
    (FULL, ((10, 200), (2, 8))),
], ids=["firstorder", "full_pipeline"])
def test_device_pipeline_counts_independent_of_regions_cuda(params, sizes):
    """Uploads, downloads and synchronisations of one case do not depend on its number of regions (3, 2 and 2;
    launches neither), and once the pool has grown to the larger case the smaller one allocates nothing."""
    _skip_unless_cuda()
    n_small, n_big = _sizes(*sizes)
    small, big = _case(n_small, seed=n_small), _case(n_big, seed=n_big)
    counts = []
    for ct, labels in (big, small):   # the big case first: it grows the pool (a fresh pipeline allocates)
        rlnfast.device_stats(reset=True)
        t = rlnfast.extract(ct, labels, params, spacing=(1, 1, 1), backend="cuda")
        counts.append(rlnfast.device_stats(reset=True))
        assert len(t) == len(np.unique(labels)) - 1
    for c in counts:
        assert (c["h2d_copies"], c["d2h_copies"], c["synchronizations"]) == (3, 2, 2), counts
    assert counts[1]["allocations"] == 0, counts
    assert counts[0]["launches"] == counts[1]["launches"]


def test_device_pipeline_cohort_path_cuda():
    """extract_many (the cohort runner's call) with regions found on the host: each case is uploaded once and
    computed on the device, equal to the cpu backend; a case the pipeline cannot take (NaN in a region, dropped)
    takes the per-op path inside the same call."""
    _skip_unless_cuda()
    from rlnfast.extract import extract_many
    from rlnfast.io import Volume
    from rlnfast.params import load_params
    from rlnfast.regions import find_regions

    p = load_params({"imageType": {"Original": {}}, "featureClass": {"firstorder": None},
                     "setting": {"nonFinite": "drop"}})
    items = []
    for seed in (4, 5):
        ct, labels = _case(3, cells=(1, 2, 2), seed=seed, dtype=np.float32)
        items.append((Volume(ct, (1.0, 1.0, 1.0), name=f"case {seed}"), find_regions(labels)))
    items[1][0].array[tuple(np.argwhere(items[1][1].label_map == 1)[0])] = np.nan
    from rlnfast import _device_pipeline

    assert _device_pipeline.case_columns(*items[0], p) is not None   # on the device
    assert _device_pipeline.case_columns(*items[1], p) is None       # NaN in a region: per op
    ref = extract_many(items, p, "cpu")
    got = extract_many(items, p, "cuda")
    for g, r in zip(got, ref):
        _assert_tables_equal(g, r)
