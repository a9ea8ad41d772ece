"""Hostile and broken inputs (issue 14): one test per fault found by fuzzing and fault injection, with its
reproduction. Every call that once hung or crashed runs in a child process with a time limit, so a
regression fails the test (with the child's output) instead of hanging or killing the suite; the limits are
generous bounds on "returns at all", not timings."""
from __future__ import annotations

import fcntl
import gzip
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

LIMIT_S = 120   # a call that once never returned; any answer within this is fine


def _py(code: str, timeout: float = LIMIT_S, env_extra=None) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line last. A hang or a crash fails here."""
    env = dict(os.environ, **(env_extra or {}))
    try:
        r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                           timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"no answer within {timeout} s (hang): {exc.stderr!r}")
    assert r.returncode == 0, f"child crashed or failed (rc {r.returncode}):\n{r.stderr[-3000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


# The child's helper: {"ok": value} or {"error": "Type", "msg": ...}.
_CALL = """
import json, numpy as np
def call(fn):
    try:
        return {"ok": fn()}
    except Exception as exc:
        return {"error": type(exc).__name__, "msg": str(exc)}
"""


# ---- 1. hangs -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_extract_range_with_zero_bin_step_returns(backend):
    """-1e18 next to 0: binWidth 25 has no representable step at 1e18 (low + 25 == low) -> named error."""
    out = _py(_CALL + f"""
import rlnfast
r = call(lambda: rlnfast.extract(np.array([[[-1e18, 0.0]]]), np.ones((1, 1, 2), np.uint8), spacing=(1, 1, 1),
                                 backend="{backend}").shape[0])
print(json.dumps(r))
""")
    assert out.get("error") == "ValueError", out
    assert "binned" in out["msg"]


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_int64_min_sentinel_next_to_zero(backend):
    out = _py(_CALL + f"""
import rlnfast
img = np.array([[[np.iinfo(np.int64).min, 0]]], dtype=np.int64)
r = call(lambda: rlnfast.extract(img, np.ones((1, 1, 2), np.uint8), spacing=(1, 1, 1), backend="{backend}").shape[0])
print(json.dumps(r))
""")
    assert out.get("error") == "ValueError", out


@pytest.mark.parametrize("v", [2.0 ** 23, 2.0 ** 24, 3e7])
def test_flat_float32_region_beyond_2_23_bincount(v):
    """NumPy refuses these edges ("Too many bins for data range"); every backend says so too."""
    out = _py(_CALL + f"""
from rlnfast.ops.firstorder import firstorder
vals = np.full(6, {v!r}, np.float32).astype(np.float64)
res = {{b: call(lambda b=b: firstorder(vals, np.array([0, 6]), bin_count=32, value_dtype=np.float32,
                                       backend=b).tolist()) for b in ("cpu", "numpy")}}
print(json.dumps(res))
""")
    assert out["cpu"].get("error") == "ValueError", out
    assert out["numpy"].get("error") == "ValueError", out


def test_nan_to_firstorder_is_refused():
    out = _py(_CALL + """
from rlnfast.ops.firstorder import firstorder
res = {b: call(lambda b=b: firstorder(np.array([1.0, np.nan, 3.0]), np.array([0, 3]), backend=b).tolist())
       for b in ("cpu", "numpy")}
print(json.dumps(res))
""")
    for b, r in out.items():
        assert r.get("error") == "ValueError" and "NaN" in r["msg"], (b, r)


def test_reference_fractal_min_box_size_zero():
    out = _py(_CALL + """
from rlnfast.reference.fractal import box_sizes_one, region_features
from rlnfast.spec.fractal import crops_from_masks
m = np.zeros((6, 6, 6), bool); m[1:5, 1:5, 1:5] = True
crops = crops_from_masks([m], (1.0, 1.0, 1.0))
print(json.dumps({"one": call(lambda: box_sizes_one((6, 6, 6), (10**6,) * 3, 0.0)),
                  "all": call(lambda: len(region_features(crops, min_box_size=0.0).n_sizes))}))
""")
    assert out["one"].get("error") == "ValueError", out
    assert out["all"].get("error") == "ValueError", out


# ---- 2. silently wrong -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9, 0.99])
def test_truncated_nii_gz_is_an_error_naming_the_file(tmp_path, fraction):
    import SimpleITK as sitk

    arr = (np.arange(20 * 24 * 24, dtype=np.int16).reshape(20, 24, 24) % 400) - 100
    img = sitk.GetImageFromArray(arr)
    full = tmp_path / "ct.nii.gz"
    sitk.WriteImage(img, str(full))
    data = full.read_bytes()
    cut = tmp_path / f"cut{int(fraction * 100)}.nii.gz"
    cut.write_bytes(data[:max(1, int(len(data) * fraction))])
    out = _py(_CALL + f"""
from rlnfast.io import read_volume
print(json.dumps(call(lambda: float(read_volume({str(cut)!r}).array.sum()))))
""")
    assert out.get("error") == "ValueError", out
    assert cut.name in out["msg"] and ("truncated" in out["msg"] or "corrupt" in out["msg"])


def test_complete_files_pass_the_truncation_check(tmp_path):
    import SimpleITK as sitk

    from rlnfast.io import check_complete, read_volume

    arr = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    for name in ("a.nii.gz", "a.nii", "a.nrrd"):
        w = sitk.ImageFileWriter()
        w.SetFileName(str(tmp_path / name))
        w.SetUseCompression(True)
        w.Execute(sitk.GetImageFromArray(arr))
        check_complete(tmp_path / name)
        np.testing.assert_array_equal(read_volume(tmp_path / name).array, arr)


def test_truncated_gzip_nrrd_is_an_error(tmp_path):
    import SimpleITK as sitk

    from rlnfast.io import read_volume

    w = sitk.ImageFileWriter()
    w.SetFileName(str(tmp_path / "a.nrrd"))
    w.SetUseCompression(True)
    w.Execute(sitk.GetImageFromArray(np.random.default_rng(0).normal(size=(8, 16, 16)).astype(np.float32)))
    data = (tmp_path / "a.nrrd").read_bytes()
    (tmp_path / "cut.nrrd").write_bytes(data[:int(len(data) * 0.6)])
    with pytest.raises(ValueError, match="cut.nrrd"):
        read_volume(tmp_path / "cut.nrrd")


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_edge_count_overflowing_int64_is_an_error(backend):
    """[0, 5e20, 1e21, 3] at binWidth 25 needs 4e19 edges: an error with the reason, not Entropy 0.811."""
    from rlnfast.ops.firstorder import firstorder

    with pytest.raises(ValueError, match="cannot be binned"):
        firstorder(np.array([0, 5e20, 1e21, 3.0]), np.array([0, 4]), bin_width=25.0, backend=backend)


def test_float32_bin_width_not_exact_in_float32_bins_as_numpy_and_pyradiomics():
    from rlnfast.ops.firstorder import FEATURES, firstorder

    ent = FEATURES.index("Entropy")
    v = np.array([-0.05, -1e-10, 0.05, 0.07], np.float32)
    got = {b: firstorder(v.astype(np.float64), np.array([0, 4]), bin_width=0.1, value_dtype=np.float32,
                         backend=b)[0, ent] for b in ("cpu", "numpy")}
    assert got["numpy"] == pytest.approx(1.0, abs=1e-12)   # numpy 2: edges -0.1, 0, 0.1, 0.2 (the second edge low + w in float32)
    assert got["cpu"] == got["numpy"]
    # realistic float32 regions at binWidth 0.1 and 0.3: every backend bins as the reference
    rng = np.random.default_rng(3)
    regions = [rng.normal(rng.uniform(-3, 3), rng.uniform(0.05, 2), size=rng.integers(5, 300)).astype(np.float32)
               for _ in range(200)]
    vals = np.concatenate(regions).astype(np.float64)
    offs = np.concatenate([[0], np.cumsum([len(r) for r in regions])])
    for w in (0.1, 0.3):
        ref = firstorder(vals, offs, bin_width=w, value_dtype=np.float32, backend="numpy")
        cpu = firstorder(vals, offs, bin_width=w, value_dtype=np.float32, backend="cpu")
        np.testing.assert_allclose(cpu[:, ent], ref[:, ent], rtol=1e-12, atol=1e-12)


def test_float32_bin_width_matches_pyradiomics():
    from conftest import PYRADIOMICS_HOWTO, require_module

    radiomics = require_module("radiomics", PYRADIOMICS_HOWTO)
    import SimpleITK as sitk
    from radiomics import firstorder as rfo

    from rlnfast.ops.firstorder import FEATURES, firstorder

    radiomics.setVerbosity(60)
    v = np.array([-0.05, -1e-10, 0.05, 0.07], np.float32).reshape(1, 1, 4)
    img, msk = sitk.GetImageFromArray(v), sitk.GetImageFromArray(np.ones((1, 1, 4), np.uint8))
    f = rfo.RadiomicsFirstOrder(img, msk, binWidth=0.1)
    f.enableFeatureByName("Entropy")
    py = float(f.execute()["Entropy"])
    cpu = firstorder(v.ravel().astype(np.float64), np.array([0, 4]), bin_width=0.1, value_dtype=np.float32,
                     backend="cpu")[0, FEATURES.index("Entropy")]
    assert cpu == pytest.approx(py, abs=1e-12)


def test_constant_count_fractal_fit_has_nan_r2():
    from rlnfast.ops.fractal import fit_dimension
    from rlnfast.reference.fractal import fit_one

    sizes = np.array([[0.5, 1.0, 2.0, 4.0]])
    counts = np.array([[5, 5, 5, 5]])
    slope, r2 = fit_dimension(sizes, counts, np.array([4]))
    assert np.isnan(r2[0]) and abs(slope[0]) < 1e-12
    s, r = fit_one(sizes[0], counts[0])
    assert np.isnan(r) and abs(s) < 1e-12
    # a non-constant fit keeps its R^2
    assert fit_dimension(sizes, np.array([[40, 20, 10, 6]]), np.array([4]))[1][0] > 0.9


# ---- 3. memory safety ------------------------------------------------------------------------------------

_EDITS = ["more", "fewer", "moved", "outside_box"]


@pytest.mark.parametrize("edit", _EDITS)
def test_label_map_edited_after_find_regions_changes_nothing(edit):
    """find_regions owns a read-only copy of the label map (default): editing the caller's array afterwards,
    count-preserving edits included, leaves gather's result as it was when the regions were found."""
    out = _py(_CALL + f"""
from rlnfast.regions import find_regions, gather
lm = np.zeros((8, 8, 8), np.int32); lm[2:6, 2:6, 2:6] = 1; lm[2:6, 2:6, 3] = 2; lm[3, 3, 4] = 0
img = np.arange(lm.size, dtype=np.float64).reshape(lm.shape)
reg = find_regions(lm)
v0, o0 = gather(img, reg)
edit = "{edit}"
if edit == "more": lm[2:6, 2:6, 3] = 1
elif edit == "fewer": lm[2:6, 2:6, 3] = 0
elif edit == "moved": lm[3, 3, 4], lm[5, 5, 5] = 1, 0          # label 1 keeps its count inside its box
else: lm[7, 7, 7] = 1                                           # outside label 1's box
v1, o1 = gather(img, reg)
print(json.dumps({{"same": bool(np.array_equal(v0, v1) and np.array_equal(o0, o1)),
                   "readonly": not reg.label_map.flags.writeable,
                   "write": call(lambda: reg.label_map.__setitem__((0, 0, 0), 5))}}))
""")
    assert out["same"] and out["readonly"], out
    assert out["write"].get("error") == "ValueError", out   # the Regions' own map is read-only


@pytest.mark.parametrize("edit", _EDITS)
def test_label_map_edited_after_find_regions_without_copy_is_safe(edit):
    """copy=False (the regions hold the caller's array): an edit that changes a region's voxel count inside
    its box is a ValueError, never a heap overflow (the compiled gather bounds every write by the counted
    slice); a count-preserving edit gives the edited map's values, in C order; voxels added outside a box are
    not seen (documented in find_regions)."""
    out = _py(_CALL + f"""
from rlnfast.regions import find_regions, gather
lm = np.zeros((8, 8, 8), np.int32); lm[2:6, 2:6, 2:6] = 1; lm[2:6, 2:6, 3] = 2; lm[3, 3, 4] = 0
img = np.arange(lm.size, dtype=np.float64).reshape(lm.shape)
reg = find_regions(lm, copy=False)
before1 = img[lm == 1].tolist()
edit = "{edit}"
if edit == "more": lm[2:6, 2:6, 3] = 1
elif edit == "fewer": lm[2:6, 2:6, 3] = 0
elif edit == "moved": lm[3, 3, 4], lm[5, 5, 5] = 1, 0
else: lm[7, 7, 7] = 1
r = call(lambda: [a.tolist() for a in gather(img, reg)])
print(json.dumps({{"r": r, "want": [img[lm == 1].tolist(), img[lm == 2].tolist()], "before1": before1}}))
""")
    r = out["r"]
    if edit in ("more", "fewer"):
        assert r.get("error") == "ValueError" and "changed" in r["msg"], out
    else:
        values, offsets = r["ok"]
        got1, got2 = values[offsets[0]:offsets[1]], values[offsets[1]:offsets[2]]
        if edit == "moved":
            assert got1 == out["want"][0] and got2 == out["want"][1]
        else:
            assert got1 == out["before1"] and got2 == out["want"][1]


@pytest.mark.parametrize("edit", ["bbox_outside", "label_minus_one", "count_too_big", "bbox_shape"])
def test_gather_refuses_a_forged_regions(edit):
    out = _py(_CALL + f"""
from rlnfast.regions import find_regions, gather
lm = np.zeros((8, 8, 8), np.int32); lm[2:4, 2:4, 2:4] = 1; lm[5, 5, 5] = 2
img = np.ones(lm.shape)
reg = find_regions(lm)
edit = "{edit}"
if edit == "bbox_outside":
    reg.bbox[0] = [0, 0, 0, 100, 100, 100]
elif edit == "label_minus_one":
    reg.label[0] = -1
elif edit == "count_too_big":
    reg.count[0] = 10**9
else:
    reg.bbox = reg.bbox[:, :4]
print(json.dumps(call(lambda: gather(img, reg)[0].size)))
""")
    assert out.get("error") == "ValueError", out


@pytest.mark.parametrize("threads", ["1", "8"])
def test_region_tables_are_bounded_by_the_data_not_the_label_values(threads):
    """Labels near 4,000,000 (and one near 2^40) seen by every thread: the tables and their output hold one
    row per label present, so the peak memory (ru_maxrss, in a fresh process) of label_stats, find_regions
    and gather grows with the data, not with the largest label value times the threads."""
    out = _py("""
import json, resource, numpy as np
from rlnfast.regions import find_regions, gather, label_stats
rng = np.random.default_rng(0)
lm = np.zeros((64, 64, 64), np.int64)
idx = rng.choice(lm.size, 3000, replace=False)
lm.ravel()[idx] = 4_000_001 + rng.integers(0, 1000, 3000)
lm[:, 1, 1] = 4_000_000; lm[:, 2, 2] = 3; lm[0, 0, 0] = 2**40
img = rng.normal(size=lm.shape)
small = np.zeros((8, 8, 8), np.int64); small[1, 1, 1] = 5
gather(img[:8, :8, :8], find_regions(small))          # warm up the module and its thread pool
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
labels, counts, bbox = label_stats(lm)
reg = find_regions(lm)
values, offsets = gather(img, reg)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
i = int(np.searchsorted(labels, 4_000_000))
print(json.dumps({"mib": (after - before) / 1024, "data_mib": (lm.nbytes + img.nbytes) / 2**20,
                  "n_labels": len(labels), "unique": len(np.unique(lm)) - 1, "top": int(labels[-1]),
                  "count": int(counts[i]), "bbox": bbox[i].tolist(), "n3": int(counts[0]), "first": int(labels[0]),
                  "gathered": int(offsets[-1]), "nonzero": int(np.count_nonzero(lm))}))
""", env_extra={"OMP_NUM_THREADS": threads})
    assert out["n_labels"] == out["unique"] and out["top"] == 2**40 and out["first"] == 3 and out["n3"] == 64
    assert out["count"] == 64 and out["bbox"] == [0, 1, 1, 63, 1, 1]
    assert out["gathered"] == out["nonzero"]
    # dense tables by label value would be 4e6 x 56 bytes = 214 MiB per table (x threads); 2^40 impossible.
    # What remains: one label-map copy (find_regions owns one), the gathered values, scratch: a few x data.
    assert out["mib"] < 16 + 3 * out["data_mib"], out


# ---- 5. parameter files ----------------------------------------------------------------------------------

def test_yaml_alias_bomb_is_refused(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi"))
    f = tmp_path / "bomb.yaml"
    f.write_text("setting:\n  binWidth: 25\n" + bomb)
    assert len(f.read_bytes()) < 600
    out = _py(_CALL + f"""
from rlnfast.params import load_params
print(json.dumps(call(lambda: str(load_params({str(f)!r})))))
""", timeout=60)
    assert out.get("error") == "ValueError" and "alias" in out["msg"], out


def test_parameter_file_size_limit(tmp_path):
    from rlnfast.params import MAX_PARAMS_BYTES, load_params

    f = tmp_path / "big.yaml"
    f.write_text("setting:\n  binWidth: 25\n" + "#" * (MAX_PARAMS_BYTES + 1) + "\n")
    with pytest.raises(ValueError, match="bytes"):
        load_params(f)


@pytest.mark.parametrize("setting", [{"gamma": -1}, {"clipRange": [100, -100]}, {"sigma": 0},
                                     {"connectivity": 7}, {"voxelArrayShift": float("nan")},
                                     {"binWidth": float("inf")}, {"minimumComponentVoxels": 0},
                                     {"label": 0}, {"fractalGreyLevels": 1}])
def test_every_value_is_checked_whether_or_not_its_class_is_enabled(setting):
    from rlnfast.params import load_params

    key = next(iter(setting))
    with pytest.raises(ValueError, match=key):
        load_params({"setting": setting, "imageType": {"Original": {}}, "featureClass": {"firstorder": None}})


# ---- 6. one error style ----------------------------------------------------------------------------------

def _dtype_ops():
    """Every public entry point that takes an image or values: name -> fn(array, backend) -> ndarray."""
    import rlnfast
    from rlnfast.ops.dem import dem
    from rlnfast.ops.elasticity import elasticity
    from rlnfast.ops.firstorder import firstorder
    from rlnfast.regions import find_regions, gather

    mask = np.zeros((4, 6, 6), np.uint8)
    mask[1:3, 1:5, 1:5] = 1

    def ext(a, be):
        df = rlnfast.extract(a, mask, spacing=(1, 1, 1), backend=be,
                             params={"imageType": {"Original": {}, "Elasticity": {}}, "featureClass": {"firstorder": None}})
        return df[[c for c in df.columns if "firstorder" in c]].to_numpy(np.float64)

    return {
        "extract": ext,
        "elasticity": lambda a, be: np.asarray(elasticity(a, backend=be)),
        "dem": lambda a, be: np.asarray(dem(a, spacing=(1, 1, 1), backend=be)),
        "gather": lambda a, be: gather(a, find_regions(mask))[0],
        "firstorder": lambda a, be: firstorder(a.ravel(), np.array([0, a.size]), backend=be),
    }


_DTYPE_CASES = [(op, be) for op in ("extract", "elasticity", "dem", "gather", "firstorder")
                for be in (("cpu",) if op == "gather" else ("cpu", "numpy"))]


@pytest.mark.parametrize("op,backend", _DTYPE_CASES)
def test_float16_is_float32_exactly_in_every_op(op, backend):
    fn = _dtype_ops()[op]
    a16 = (np.arange(4 * 6 * 6).reshape(4, 6, 6) * 0.75 - 40.0).astype(np.float16)
    np.testing.assert_array_equal(fn(a16, backend), fn(a16.astype(np.float32), backend))


@pytest.mark.parametrize("op,backend", _DTYPE_CASES)
def test_uint64_is_int64_where_exact_and_refused_by_name_where_not(op, backend):
    fn = _dtype_ops()[op]
    a = (np.arange(4 * 6 * 6).reshape(4, 6, 6) * 7).astype(np.uint64)
    np.testing.assert_array_equal(fn(a, backend), fn(a.astype(np.int64), backend))
    big = a.copy()
    big[2, 2, 2] = 2 ** 63 + 1
    with pytest.raises(ValueError, match="uint64"):
        fn(big, backend)
    with pytest.raises(ValueError, match="complex64 is not supported"):
        fn(a.astype(np.complex64), backend)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16])
@pytest.mark.parametrize("clip", [(1000.0, 2000.0), (-2000.0, -1000.0), (-50.0, 60.0)])
def test_integer_ct_whose_range_lies_outside_clip_range(dtype, clip):
    """(was vector::_M_default_append) every voxel clips: the map equals the float64 reference's."""
    from rlnfast.ops.dem import dem
    from rlnfast.ops.elasticity import elasticity

    info = np.iinfo(dtype)
    ct = np.random.default_rng(1).integers(info.min, int(info.max) + 1, size=(5, 6, 7)).astype(dtype)
    ref = elasticity(ct.astype(np.float64), clip_range=clip, backend="numpy")
    np.testing.assert_allclose(elasticity(ct, clip_range=clip, backend="cpu"), ref, rtol=1e-14, atol=0)
    d_ref = dem(ct.astype(np.float64), clip_range=clip, spacing=(1, 1, 2), backend="numpy")
    # a constant map's DEM is 0 up to rounding (the reference's sums leave ~1e-14 of E)
    np.testing.assert_allclose(dem(ct, clip_range=clip, spacing=(1, 1, 2), backend="cpu"), d_ref, rtol=1e-9,
                               atol=1e-9 * float(np.max(np.abs(ref))))


@pytest.mark.parametrize("spacing", ["abc", "1,1,1", (1, "x", 1), 2.0, (1, 1)])
def test_bad_spacing_names_the_argument_and_what_is_expected(spacing):
    import rlnfast
    from rlnfast.ops.dem import dem

    ct = np.zeros((3, 4, 4), np.int16)
    for call in (lambda: rlnfast.extract(ct, np.ones(ct.shape, np.uint8), spacing=spacing),
                 lambda: dem(ct, spacing=spacing)):
        with pytest.raises(ValueError, match="spacing") as exc:
            call()
        assert "could not convert" not in str(exc.value) and ("three numbers" in str(exc.value)
                                                            or "3 values" in str(exc.value))


def test_micrometre_spacing_refuses_the_dem_at_once():
    """spacing 2e-6 mm with sigma 1 mm: a filter of 2,000,000 voxels per axis that ran for minutes -> an error
    naming spacing and sigma, from the op and from extract with the DEM image type, within the time limit."""
    out = _py(_CALL + """
import rlnfast
from rlnfast.ops.dem import dem
ct = np.random.default_rng(0).integers(-100, 100, size=(40, 60, 60)).astype(np.int16)
m = np.zeros(ct.shape, np.uint8); m[10:30, 10:50, 10:50] = 1
print(json.dumps({"op": call(lambda: dem(ct, spacing=(2e-6,) * 3).shape),
                  "extract": call(lambda: rlnfast.extract(ct, m, spacing=(2e-6,) * 3,
                                  params={"imageType": {"DEM": {}}}).shape)}))
""", timeout=60)
    for r in out.values():
        assert r.get("error") == "ValueError" and "spacing" in r["msg"] and "sigma" in r["msg"], out


def _cli(*args, timeout=LIMIT_S):
    return subprocess.run([sys.executable, "-m", "rlnfast", *args], capture_output=True, text=True, timeout=timeout)


def _tiny_batch(folder: Path, n=2):
    import pandas as pd
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        ct = np.random.default_rng(i).normal(40, 20, size=(6, 12, 12)).round().astype(np.int16)
        lab = np.zeros(ct.shape, np.uint8)
        lab[2:5, 3:9, 3:9] = 1
        sitk.WriteImage(sitk.GetImageFromArray(ct), str(folder / f"ct{i}.nii.gz"))
        sitk.WriteImage(sitk.GetImageFromArray(lab), str(folder / f"m{i}.nii.gz"))
        rows.append({"ID": f"c{i}", "Image": f"ct{i}.nii.gz", "Mask": f"m{i}.nii.gz"})
    pd.DataFrame(rows).to_csv(folder / "batch.csv", index=False)
    return folder / "batch.csv"


def test_locked_out_dir_is_refused_in_one_line(tmp_path):
    batch = _tiny_batch(tmp_path / "d")
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    fd = os.open(out_dir / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)   # another run holds it
    try:
        r = _cli("extract", str(batch), "--out-dir", str(out_dir), "-o", str(tmp_path / "f.csv"), "--quiet")
    finally:
        os.close(fd)
    assert r.returncode == 3, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "in use by another run" in r.stderr
    r = _cli("extract", str(batch), "--out-dir", str(out_dir), "-o", str(tmp_path / "f.csv"), "--quiet")
    assert r.returncode == 0, r.stderr   # released: the next run goes


def test_two_runs_on_one_out_dir_with_different_parameters(tmp_path):
    """Run A holds the out-dir (one case stalls until --case-timeout); B with other parameters is refused in one
    line (exit 3) and leaves A's files alone; C with other parameters and --wait-lock waits for A, then computes
    every case with its own parameters: each summary says what its own output holds."""
    import time

    import pandas as pd

    from rlnfast import cohort

    batch = _tiny_batch(tmp_path / "d", n=3)
    out_dir = tmp_path / "o"
    pa, pb = tmp_path / "a.yaml", tmp_path / "b.yaml"
    pa.write_text("setting:\n  binWidth: 25\n")
    pb.write_text("setting:\n  binWidth: 5\n")
    env = dict(os.environ, **{cohort.STALL_ENV: "c1"})
    a = subprocess.Popen([sys.executable, "-m", "rlnfast", "extract", str(batch), "-p", str(pa), "--out-dir",
                          str(out_dir), "-o", str(tmp_path / "fa.csv"), "--quiet", "--case-timeout", "10"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + LIMIT_S
        while time.monotonic() < deadline:   # A has taken the lock (it writes its pid into it)
            try:
                if (out_dir / ".lock").read_text().strip() == f"pid {a.pid}":
                    break
            except OSError:
                pass
            assert a.poll() is None, a.communicate()
            time.sleep(0.1)
        b = _cli("extract", str(batch), "-p", str(pb), "--out-dir", str(out_dir), "-o", str(tmp_path / "fb.csv"),
                 "--quiet")
        assert a.poll() is None, "A finished before B ran: the test did not overlap them"
        c = _cli("extract", str(batch), "-p", str(pb), "--out-dir", str(out_dir), "-o", str(tmp_path / "fc.csv"),
                 "--quiet", "--wait-lock", str(2 * LIMIT_S), timeout=3 * LIMIT_S)
        # (A holds the lock for several time limits: its stalled group of 3 is retried one case at a time)
        a_out, a_err = a.communicate(timeout=LIMIT_S)
    finally:
        if a.poll() is None:
            a.kill()
    assert b.returncode == 3 and len(b.stderr.strip().splitlines()) == 1 and "in use" in b.stderr, b.stderr
    assert not (tmp_path / "fb.csv").exists()
    assert a.returncode == 1 and "(2 computed, 0 already done), 1 failed" in a_out, (a_out, a_err)
    assert c.returncode == 0 and "3 regions from 3 case(s) (3 computed, 0 already done), 0 failed" in c.stdout, c
    fa, fc = pd.read_csv(tmp_path / "fa.csv"), pd.read_csv(tmp_path / "fc.csv")
    assert sorted(fa.ID) == ["c0", "c2"] and sorted(fc.ID) == ["c0", "c1", "c2"]
    assert all(json.loads(v)["binWidth"] == 5 for v in fc["diagnostics_Configuration_Settings"])
    assert all(json.loads(v)["binWidth"] == 25 for v in fa["diagnostics_Configuration_Settings"])


@pytest.mark.parametrize("case", ["missing", "not_an_image", "micrometre_spacing", "uint8_outside_clip",
                                  "truncated"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, case):
    """Expected failures of the commands' inputs: one line on stderr, exit code 2, never a traceback; the
    micrometre-spacing DEM is refused at once; a uint8 CT whose range lies outside clipRange just works."""
    import SimpleITK as sitk

    ct = np.random.default_rng(0).integers(-100, 100, size=(20, 40, 40)).astype(np.int16)
    img = sitk.GetImageFromArray(ct if case != "uint8_outside_clip" else (ct + 100).astype(np.uint8))
    img.SetSpacing((2e-6,) * 3 if case == "micrometre_spacing" else (0.8, 0.8, 2.0))
    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(img, str(path))
    if case == "missing":
        path = tmp_path / "nothere.nii.gz"
    elif case == "not_an_image":
        path = tmp_path / "ct.txt"
        path.write_text("hello")
    elif case == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
    extra = ["--clip-range", "1000", "2000"] if case == "uint8_outside_clip" else []
    r = _cli("maps", str(path), "-o", str(tmp_path / "m") + "/", *extra, timeout=60)
    if case == "uint8_outside_clip":
        assert r.returncode == 0, r.stderr
        e = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "m" / "E.nii.gz")))
        assert np.all(e == e.flat[0])   # every voxel clips to 1000 HU
        return
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlnfast maps: error: ") and "Traceback" not in r.stderr, lines
    if case == "micrometre_spacing":
        assert "spacing" in lines[0] and "sigma" in lines[0]


def test_io_error_is_one_line(tmp_path):
    batch = _tiny_batch(tmp_path / "d")
    (tmp_path / "afile").write_text("x")
    r = _cli("extract", str(batch), "--out-dir", str(tmp_path / "afile" / "o"), "-o", str(tmp_path / "f.csv"),
             "--quiet")
    assert r.returncode == 4, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_disk_full_is_one_line(tmp_path):
    """ENOSPC while writing a result (simulated: the write raises it)."""
    batch = _tiny_batch(tmp_path / "d")
    code = f"""
import errno, sys
import rlnfast.cohort as c
def full(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device", "features.csv")
c.write_table = full
from rlnfast.cli import main
sys.exit(main(["extract", {str(batch)!r}, "--out-dir", {str(tmp_path / "o")!r}, "-o", {str(tmp_path / "f.csv")!r},
               "--quiet", "--case-timeout", "0"]))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=LIMIT_S)
    assert r.returncode == 4, r.stderr
    assert r.stderr.strip().splitlines() == ["rlnfast extract: error: No space left on device: 'features.csv'"]


def test_segment_states_the_pickle_risk_and_takes_only_a_named_folder(tmp_path):
    r = _cli("segment", "--help")
    assert "pickle" in r.stdout and "trust" in r.stdout
    model = tmp_path / "model"
    model.mkdir()
    r = _cli("segment", "--model", str(model), "--input", str(tmp_path), "-o", str(tmp_path / "o"),
             "--checkpoint", "../../elsewhere/evil.pth")
    assert r.returncode == 2 and "file name" in r.stderr, r.stderr
    r = _cli("segment", "--model", str(tmp_path / "nothere"), "--input", str(tmp_path), "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = _cli("segment", "--model", str(model), "--input", str(tmp_path), "-o", str(tmp_path / "o"),
             "--folds", "../../elsewhere")
    assert r.returncode == 2 and "--folds" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    # the README's segment section states it too
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    seg = [ln for ln in readme.splitlines() if "rlnfast segment" in ln and "pickle" in ln]
    assert seg, "README: the `rlnfast segment` pickle risk"


def test_case_timeout_fires_and_the_run_goes_on(tmp_path):
    """A stalled case (testing aid RLNFAST_STALL_ID) is stopped after --case-timeout, listed in errors.csv,
    and the other cases finish; a rerun without the stall computes only that case."""
    import pandas as pd

    from rlnfast import cohort

    batch = _tiny_batch(tmp_path / "d", n=3)
    out_dir, out = tmp_path / "o", tmp_path / "f.csv"
    env = dict(os.environ, **{cohort.STALL_ENV: "c1"})
    r = subprocess.run([sys.executable, "-m", "rlnfast", "extract", str(batch), "--out-dir", str(out_dir), "-o",
                        str(out), "--quiet", "--case-timeout", "5"], capture_output=True, text=True, env=env,
                       timeout=LIMIT_S)
    assert r.returncode == 1, r.stderr
    errors = pd.read_csv(out_dir / "errors.csv")
    assert errors.ID.tolist() == ["c1"] and "CaseTimeout" in errors.error[0]
    assert sorted(pd.read_csv(out).ID.unique()) == ["c0", "c2"]
    r = _cli("extract", str(batch), "--out-dir", str(out_dir), "-o", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "1 computed, 2 already done" in r.stdout
    assert sorted(pd.read_csv(out).ID.unique()) == ["c0", "c1", "c2"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_case_timeout_fires_under_dask_local(tmp_path, workers):
    """--dask local (a LocalCluster of daemonic worker processes, 127.0.0.1): the stalled case is stopped after
    --case-timeout and listed in errors.csv, the others finish (the watched child is started with subprocess,
    which daemonic workers may do)."""
    pytest.importorskip("distributed", reason="dask.distributed not installed (pip install 'rlnfast[dask]')")
    import pandas as pd

    from rlnfast import cohort

    batch = _tiny_batch(tmp_path / "d", n=3)
    out_dir, out = tmp_path / "o", tmp_path / "f.csv"
    env = dict(os.environ, **{cohort.STALL_ENV: "c1"})
    r = subprocess.run([sys.executable, "-m", "rlnfast", "extract", str(batch), "--out-dir", str(out_dir), "-o",
                        str(out), "--quiet", "--case-timeout", "5", "--dask", "local", "--jobs", workers,
                        "--chunk-size", "2"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "without a time limit" not in r.stderr
    errors = pd.read_csv(out_dir / "errors.csv")
    assert errors.ID.tolist() == ["c1"] and "CaseTimeout" in errors.error[0]
    assert sorted(pd.read_csv(out).ID.unique()) == ["c0", "c2"]
