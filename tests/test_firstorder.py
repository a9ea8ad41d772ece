"""First-order features: golden values, IBSI phantom, pyradiomics itself, and every backend against the
NumPy reference with one tolerance table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import rlnfast
from rlnfast.ops.firstorder import DEFAULT_FEATURES, FEATURE_DOCS, FEATURES, firstorder

from conftest import PYRADIOMICS_HOWTO, assert_close, data_path, require_module

CASES = ["brain1", "brain2", "breast1", "lung1", "lung2"]


@pytest.fixture(scope="module")
def golden():
    return pd.read_csv(data_path("pyradiomics", "baseline", "baseline_firstorder.csv"), index_col=0)


def test_golden_completeness(golden):
    """Every default feature has a golden value and every golden first-order value has a feature."""
    golden_feats = {r.split("original_firstorder_", 1)[1] for r in golden.index if r.startswith("original_firstorder_")}
    assert golden_feats == set(DEFAULT_FEATURES), (
        f"missing golden values: {set(DEFAULT_FEATURES) - golden_feats}; "
        f"golden values without a feature: {golden_feats - set(DEFAULT_FEATURES)}")
    for case in CASES:
        assert case in golden.columns, f"golden file lacks case {case}"
        vals = golden.loc[[f"original_firstorder_{f}" for f in DEFAULT_FEATURES], case]
        assert vals.notna().all(), f"{case}: golden values missing for {list(vals[vals.isna()].index)}"


@pytest.mark.parametrize("case", CASES)
def test_golden_values(case, golden, backend):
    """pyradiomics' own baseline (binWidth 25, voxelArrayShift 2000, label 1) to a relative 1e-9."""
    df = rlnfast.extract(data_path("pyradiomics", f"{case}_image.nrrd"), data_path("pyradiomics", f"{case}_label.nrrd"),
                         {"setting": {"binWidth": 25, "voxelArrayShift": 2000, "label": 1}}, backend=backend)
    assert len(df) == 1 and df["label"].iloc[0] == 1
    for f in DEFAULT_FEATURES:
        col = f"original_firstorder_{f}"
        expected = float(golden.loc[col, case])
        got = float(df[col].iloc[0])
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), f"{case} {f}: {got} != {expected}"


def test_ibsi_digital_phantom():
    """IBSI 1 digital phantom: intensity-histogram entropy 1.2656116 (binWidth 1) and the statistics that
    pyradiomics defines as IBSI does (kurtosis: pyradiomics = IBSI excess kurtosis + 3)."""
    ref = pd.read_csv(data_path("ibsi", "reference_values", "ibsi_1_reference_values_digital_phantom.csv"))
    ref = ref.set_index("tag")["reference value"].astype(float)
    df = rlnfast.extract(data_path("ibsi", "digital_phantom", "phantom.nii.gz"),
                         data_path("ibsi", "digital_phantom", "mask.nii.gz"), {"setting": {"binWidth": 1, "label": 1}},
                         backend="cpu")
    row = df.iloc[0]
    assert row["diagnostics_Mask-original_VoxelNum"] == 74
    assert row["original_firstorder_Entropy"] == pytest.approx(1.2656116, abs=5e-8)
    pairs = {"stat_mean": "Mean", "stat_var": "Variance", "stat_skew": "Skewness", "stat_median": "Median",
             "stat_min": "Minimum", "stat_p10": "10Percentile", "stat_p90": "90Percentile", "stat_max": "Maximum",
             "stat_iqr": "InterquartileRange", "stat_range": "Range", "stat_mad": "MeanAbsoluteDeviation",
             "stat_rmad": "RobustMeanAbsoluteDeviation", "stat_energy": "Energy", "stat_rms": "RootMeanSquared",
             "ih_entropy": "Entropy", "ih_uniformity": "Uniformity"}
    for tag, feat in pairs.items():
        expected = ref[tag]
        got = row[f"original_firstorder_{feat}"]
        # IBSI values are given to 3 significant digits
        assert got == pytest.approx(expected, rel=5e-3, abs=5e-3), f"{tag} / {feat}: {got} vs IBSI {expected}"
    assert row["original_firstorder_Kurtosis"] - 3 == pytest.approx(ref["stat_kurt"], abs=5e-4)


def _random_label_map(rng, shape=(24, 40, 40), n_regions=60):
    """Seeded label map with regions from 1 voxel to thousands of voxels (blobs grown in random boxes)."""
    lm = np.zeros(shape, np.int32)
    label = 0
    for i in range(n_regions):
        size = rng.integers(1, 12, 3) if i % 10 else np.array([1, 1, 1])
        if i == 1:
            size = np.array([20, 25, 24])   # ~1e4 voxels
        z, y, x = (rng.integers(0, shape[a] - size[a] + 1) for a in range(3))
        box = lm[z:z + size[0], y:y + size[1], x:x + size[2]]
        keep = rng.random(box.shape) < rng.uniform(0.4, 1.0)
        if i % 10 == 0:
            keep[...] = True
        keep &= box == 0
        if keep.any():
            label += 1
            box[keep] = label
    return lm


def _pyradiomics_firstorder(image: np.ndarray, lm: np.ndarray, label: int, spacing, settings):
    import SimpleITK as sitk
    from radiomics import firstorder as pr_firstorder

    img = sitk.GetImageFromArray(image)
    msk = sitk.GetImageFromArray((lm == label).astype(np.uint8))
    for im in (img, msk):
        im.SetSpacing(spacing)
    fo = pr_firstorder.RadiomicsFirstOrder(img, msk, label=1, **settings)
    fo.enableAllFeatures()
    return fo.execute()


SETTINGS = [
    {"binWidth": 25},
    {"binWidth": 7.5, "voxelArrayShift": 1000},
    {"binCount": 16},
    {"binCount": 64},
]


@pytest.mark.parametrize("dtype", [np.int16, np.float32])
@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "-".join(f"{k}{v}" for k, v in s.items()))
def test_against_pyradiomics(dtype, settings):
    """rlnfast (cpu, float64 path) equals pyradiomics' RadiomicsFirstOrder for every label of a random map."""
    require_module("radiomics", PYRADIOMICS_HOWTO)
    rng = np.random.default_rng(42)
    lm = _random_label_map(rng)
    n = lm.max()
    assert n >= 50
    if dtype == np.int16:
        image = rng.integers(-1000, 1500, lm.shape).astype(np.int16)
    else:
        image = (rng.normal(40, 300, lm.shape)).astype(np.float32)
    spacing = (0.7, 0.8, 2.5)
    params = {"setting": dict(settings)}
    df = rlnfast.extract(image, lm, params, backend="cpu", spacing=spacing)
    assert list(df["label"]) == list(range(1, n + 1))
    counts = df["diagnostics_Mask-original_VoxelNum"]
    assert counts.min() == 1 and counts.max() >= 5000
    for _, row in df.iterrows():
        ref = _pyradiomics_firstorder(image, lm, int(row["label"]), spacing, settings)
        for f in FEATURES:
            if f not in ref:
                continue
            got, exp = row.get(f"original_firstorder_{f}", None), float(ref[f])
            if got is None:  # StandardDeviation is not in the default set
                continue
            if np.isnan(exp):   # e.g. RobustMAD of 2 voxels: no voxel lies between P10 and P90
                assert np.isnan(got), f"label {row['label']} {f}: rlnfast {got}, pyradiomics NaN"
                continue
            assert got == pytest.approx(exp, rel=1e-9, abs=1e-9 * max(1.0, abs(exp))), (
                f"label {row['label']} ({counts[_]} voxels) {f}: rlnfast {got} != pyradiomics {exp}")


def _ragged(rng, n=120):
    sizes = rng.integers(1, 400, n)
    sizes[0] = 0           # an empty region
    sizes[1] = 1           # a single voxel
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    vals = rng.integers(-200, 300, off[-1]).astype(np.float64)
    vals[off[2]:off[3]] = 17.0  # a flat region
    vals[off[4]:off[5]] = rng.normal(0, 1e-3, off[5] - off[4])  # tiny range
    vals[off[6]:off[7]] = -999.9990234375 + 0.1   # flat but not a whole number: the mean is inexact
    return vals, off


@pytest.mark.parametrize("kw", [dict(bin_width=25), dict(bin_width=0.5, voxel_array_shift=300, voxel_volume=2.5),
                                dict(bin_count=10), dict(bin_count=32, value_dtype=np.float32)])
def test_backend_parity(fast_backend, kw):
    """Every backend equals the NumPy reference on a ragged batch with empty, 1-voxel and flat regions."""
    from rlnfast import _backends

    rng = np.random.default_rng(7)
    # the emulated cuda build runs every CUDA thread as an OS thread under ASan: a smaller batch there (still
    # with the empty, 1-voxel, flat and tiny-range regions); 120 regions everywhere else
    vals, off = _ragged(rng, 40 if fast_backend == "cuda" and _backends.is_emulated() else 120)
    if kw.get("value_dtype") is np.float32:   # values of a float32 image are float32 numbers
        vals = vals.astype(np.float32).astype(np.float64)
    got = firstorder(vals, off, backend=fast_backend, **kw)
    ref = firstorder(vals, off, backend="numpy", **kw)
    assert np.all(np.isnan(got[0])), "an empty region must give NaN"
    assert_close(got, ref, fast_backend, f"firstorder {kw}")


def test_device_arrays(gpu_backend):
    """GPU backends take CuPy arrays and torch CUDA tensors without a host round trip."""
    fast_backend = gpu_backend
    cp = pytest.importorskip("cupy", reason="device arrays need CuPy on a GPU (the emulated cuda backend takes "
                                            "host arrays only)")
    rng = np.random.default_rng(3)
    vals, off = _ragged(rng, 40)
    ref = firstorder(vals, off, backend="numpy")
    assert_close(firstorder(cp.asarray(vals), cp.asarray(off), backend=fast_backend), ref, fast_backend, "cupy input")
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        t = torch.as_tensor(vals, device="cuda")
        to = torch.as_tensor(off, device="cuda")
        assert_close(firstorder(t, to, backend=fast_backend), ref, fast_backend, "torch input")


def test_every_feature_documented():
    for f in FEATURES:
        assert f in FEATURE_DOCS and len(FEATURE_DOCS[f]) > 10, f"{f} has no formula in FEATURE_DOCS"
    assert firstorder.__doc__ and "bin_width" in firstorder.__doc__


def test_bad_binning():
    vals, off = np.arange(10.0), np.array([0, 10])
    with pytest.raises(ValueError, match="binWidth"):
        firstorder(vals, off, bin_width=0, backend="cpu")
    with pytest.raises(ValueError, match="binCount"):
        firstorder(vals, off, bin_count=0, backend="cpu")
    with pytest.raises(ValueError, match="offsets"):
        firstorder(vals, np.array([0, 11]), backend="cpu")
