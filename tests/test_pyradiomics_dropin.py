"""rlnfast.pyradiomics.RadiomicsFeatureExtractor against pyradiomics' own extractor: same keys, same order,
firstorder to 1e-9, delegated classes identical; pyradiomics' golden baseline (tests/test_features.py-style)
with the drop-in in place of pyradiomics' class; one test per fault of issue 13."""
from __future__ import annotations

import ast
import importlib
import json
import logging
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import DATA, PYRADIOMICS_HOWTO, data_path, require_module

radiomics = require_module("radiomics", PYRADIOMICS_HOWTO, module_level=True)
from radiomics import featureextractor  # noqa: E402

from rlnfast import pyradiomics as drop  # noqa: E402

radiomics.setVerbosity(logging.ERROR)
ORIGINAL = drop._ORIGINAL
CASES = ["brain1", "breast1", "lung1", "lung2"]

PARAMS_YAML = """
setting:
  binWidth: 25
  label: 1
  interpolator: 'sitkBSpline'
  resampledPixelSpacing:
  weightingNorm:
imageType:
  Original: {}
featureClass:
  shape:
  firstorder: []
  glcm: ['Autocorrelation', 'JointAverage', 'Contrast', 'Idmn']
  glrlm:
"""
FIRSTORDER_LIST = """
setting:
  binCount: 32
  voxelArrayShift: 1000
featureClass:
  firstorder: ['Variance', 'Entropy', 'Mean', 'StandardDeviation']
"""


def _case(case):
    return str(data_path("pyradiomics", f"{case}_image.nrrd")), str(data_path("pyradiomics", f"{case}_label.nrrd"))


def _compare(ours, theirs, diagnostics=True):
    assert list(ours) == list(theirs), "keys or their order differ from pyradiomics"
    for k, v in theirs.items():
        if k.startswith("diagnostics_"):
            if diagnostics:
                assert str(ours[k]) == str(v), k
        elif "_firstorder_" in k:
            assert float(ours[k]) == pytest.approx(float(v), rel=1e-9, abs=1e-12), k
        else:
            assert float(ours[k]) == float(v), k


@pytest.mark.parametrize("case", ["breast1", pytest.param("brain1", marks=pytest.mark.slow),
                                  pytest.param("lung1", marks=pytest.mark.slow),
                                  pytest.param("lung2", marks=pytest.mark.slow)])
@pytest.mark.parametrize("params", ["default", "example", "firstorder_list"])
def test_same_keys_and_values(case, params, tmp_path):
    img, msk = _case(case)
    if params == "default":
        args = ()
    else:
        p = tmp_path / "params.yaml"
        p.write_text(PARAMS_YAML if params == "example" else FIRSTORDER_LIST)
        args = (str(p),)
    _compare(drop.RadiomicsFeatureExtractor(*args).execute(img, msk), ORIGINAL(*args).execute(img, msk))


# ---- pyradiomics' golden baseline (its tests/test_features.py, with the drop-in swapped into pyradiomics)
BASELINE = ["firstorder", "shape", "shape2D", "glcm", "glrlm", "glszm", "gldm", "ngtdm"]
GOLDEN_CASES = ("brain1", "brain2", "breast1", "lung1", "lung2")   # the 5 test cases in ../shared/data/pyradiomics


def _baseline_columns():
    out = []
    for cls in BASELINE:
        path = DATA / "pyradiomics" / "baseline" / f"baseline_{cls}.csv"
        if not path.exists():   # collected anyway: the test itself skips (or fails under CI=true) naming the file
            out.append((cls, "reference data missing"))
            continue
        b = pd.read_csv(path, index_col=0)
        for col in b.columns:
            if b.loc["diagnostics_Configuration_TestCase", col] not in GOLDEN_CASES:
                continue   # pyradiomics' 2-D test images are not in the shared data
            slow = not col.startswith("breast1")
            out.append(pytest.param(cls, col, marks=pytest.mark.slow) if slow else (cls, col))
    return out


@pytest.fixture
def swapped(monkeypatch):
    """pyradiomics' own module with its extractor class replaced by the drop-in (no recursion)."""
    monkeypatch.setattr(featureextractor, "RadiomicsFeatureExtractor", drop.RadiomicsFeatureExtractor)
    return featureextractor


@pytest.mark.parametrize("cls, config", _baseline_columns())
def test_golden_baseline(cls, config, swapped):
    b = pd.read_csv(data_path("pyradiomics", "baseline", f"baseline_{cls}.csv"), index_col=0)
    case = b.loc["diagnostics_Configuration_TestCase", config]
    settings = ast.literal_eval(b.loc["diagnostics_Configuration_Settings", config])
    image_types = ast.literal_eval(b.loc["diagnostics_Configuration_EnabledImageTypes", config])
    ex = swapped.RadiomicsFeatureExtractor(**settings)
    assert isinstance(ex, drop.RadiomicsFeatureExtractor)
    ex.disableAllFeatures()
    ex.enableFeatureClassByName(cls)
    ex.disableAllImageTypes()
    ex.enableImageTypes(**image_types)
    res = ex.execute(*_case(case))
    original = None
    checked = 0
    for k, v in b[config].items():
        if k.startswith("diagnostics_") or pd.isna(v):
            continue
        assert k in res, f"{config}: {k} missing"
        ours, golden = float(res[k]), float(v)
        checked += 1
        if ours == pytest.approx(golden, rel=1e-9, abs=1e-12):
            continue
        # Off the golden value. Allowed only for a class rlnfast hands to pyradiomics (not first-order, which
        # rlnfast computes itself and must match to 1e-9), and only where pyradiomics 3.x itself gives the
        # same number: its baseline predates 3.x (e.g. shape Sphericity of brain1, two connected parts,
        # 0.47982 vs 0.48024), and pyradiomics' own tests/testUtils.py accepts 3% there.
        assert cls != "firstorder", f"{config}: {k}: {ours!r} != golden {golden!r}"
        if original is None:
            ref = ORIGINAL(**settings)
            ref.disableAllFeatures()
            ref.enableFeatureClassByName(cls)
            ref.disableAllImageTypes()
            ref.enableImageTypes(**image_types)
            original = ref.execute(*_case(case))
        assert ours == float(original[k]), f"{config}: {k}: drop-in {ours!r} != pyradiomics {original[k]!r}"
        assert ours == pytest.approx(golden, rel=0.03), f"{config}: {k}: outside pyradiomics' own 3% tolerance"
    assert checked > 0


# ---- one test per fault of issue 13
def test_log_and_square_are_not_dropped():
    img, msk = _case("breast1")
    ex1, ex2 = drop.RadiomicsFeatureExtractor(), ORIGINAL()
    for ex in (ex1, ex2):
        ex.disableAllFeatures()
        ex.enableFeatureClassByName("firstorder")
        ex.enableImageTypeByName("LoG", customArgs={"sigma": [3.0]})
        ex.enableImageTypeByName("Square")
    ours, theirs = ex1.execute(img, msk), ex2.execute(img, msk)
    assert sum(k.startswith("log-sigma-3-0-mm-3D_firstorder_") for k in ours) == 18
    assert sum(k.startswith("square_firstorder_") for k in ours) == 18
    _compare(ours, theirs)


def test_swapping_the_class_inside_pyradiomics_does_not_recurse(swapped):
    img, msk = _case("breast1")
    ex = swapped.RadiomicsFeatureExtractor()
    assert ORIGINAL in type(ex).__mro__ and type(ex).__mro__[1] is ORIGINAL
    _compare(ex.execute(img, msk), ORIGINAL().execute(img, msk))
    # re-importing the drop-in while swapped still finds pyradiomics' class
    again = importlib.reload(drop)
    try:
        assert again._ORIGINAL is ORIGINAL
    finally:
        swapped.RadiomicsFeatureExtractor = again.RadiomicsFeatureExtractor


def test_pyradiomics_methods_present():
    img, msk = _case("breast1")
    ex = drop.RadiomicsFeatureExtractor()
    image, mask = ex.loadImage(img, msk, **ex.settings)
    bb, _ = radiomics.imageoperations.checkMask(image, mask, **ex.settings)
    shape = ex.computeShape(image, mask, bb, **ex.settings)
    ref = ORIGINAL()
    assert list(shape) == list(ref.computeShape(image, mask, bb, **ref.settings))
    ci, cm = radiomics.imageoperations.cropToTumorMask(image, mask, bb)
    feats = ex.computeFeatures(ci, cm, "original", **ex.settings)
    _compare(feats, ref.computeFeatures(ci, cm, "original", **ref.settings))
    ex.addProvenance(False)
    assert not any(k.startswith("diagnostics_") for k in ex.execute(img, msk))


def test_load_json_params_takes_a_json_string():
    ex = drop.RadiomicsFeatureExtractor()
    ex.loadJSONParams(json.dumps({"setting": {"binWidth": 5}, "featureClass": {"firstorder": ["Mean"]}}))
    assert ex.settings["binWidth"] == 5 and ex.enabledFeatures == {"firstorder": ["Mean"]}
    with pytest.raises(TypeError):
        ex.loadJSONParams({"setting": {"binWidth": 5}})   # as pyradiomics: a string, not a dict


def test_enable_all_features_as_pyradiomics():
    ours, theirs = drop.RadiomicsFeatureExtractor(), ORIGINAL()
    ours.disableAllFeatures()
    theirs.disableAllFeatures()
    ours.enableAllFeatures()
    theirs.enableAllFeatures()
    assert list(ours.enabledFeatures) == list(theirs.enabledFeatures)
    assert "fractal" not in ours.enabledFeatures


def test_execute_all_has_pyradiomics_diagnostics_per_label():
    img = str(data_path("pyradiomics", "prostate_phantom_subvolume.nrrd"))
    msk = str(data_path("pyradiomics", "prostate_phantom_subvolume-label.nrrd"))
    ours = drop.RadiomicsFeatureExtractor(binWidth=10, minimumROIDimensions=1)
    ours.disableAllFeatures()
    ours.enableFeaturesByName(firstorder=[], glszm=["ZoneEntropy"])
    table = ours.execute_all(img, msk)
    assert list(table["label"]) == [1, 7, 8, 9]
    theirs = ORIGINAL(binWidth=10, minimumROIDimensions=1)
    theirs.disableAllFeatures()
    theirs.enableFeaturesByName(firstorder=[], glszm=["ZoneEntropy"])
    for i, lab in enumerate(table["label"]):
        ref = theirs.execute(img, msk, label=int(lab))
        diag = [k for k in ref if k.startswith("diagnostics_")]
        assert len(diag) == 22
        assert list(table.columns[1:]) == list(ref)
        row = table.iloc[i]
        _compare({k: row[k] for k in ref}, ref)


def test_refusals_name_the_key_and_the_file(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("setting:\n  binWdth: 3\n")
    with pytest.raises(ValueError, match=r"mine\.yaml.*binWdth"):
        drop.RadiomicsFeatureExtractor(str(p))
    with pytest.raises(ValueError, match="binWdth"):
        drop.RadiomicsFeatureExtractor({"setting": {"binWdth": 3}})
    ex = drop.RadiomicsFeatureExtractor()
    with pytest.raises(ValueError, match="'Sobel'"):
        ex.enableImageTypeByName("Sobel")
    with pytest.raises(ValueError, match="'texture'"):
        ex.enableFeatureClassByName("texture")


def test_parameter_file_is_closed(tmp_path):
    import gc
    import warnings

    p = tmp_path / "p.yaml"
    p.write_text(PARAMS_YAML)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        drop.RadiomicsFeatureExtractor(str(p))
        gc.collect()


def test_rlnfast_extras_follow_pyradiomics_keys():
    img, msk = _case("breast1")
    ex = drop.RadiomicsFeatureExtractor()
    ex.disableAllFeatures()
    ex.enableFeatureClassByName("firstorder")
    ex.enableImageTypeByName("Elasticity")
    res = ex.execute(img, msk)
    ref = ORIGINAL()
    ref.disableAllFeatures()
    ref.enableFeatureClassByName("firstorder")
    theirs = ref.execute(img, msk)
    assert list(res)[:len(theirs)] == list(theirs)
    assert "E_original_firstorder_Entropy" in res and np.isfinite(res["E_original_firstorder_Entropy"])


def test_without_pyradiomics_only_rlnfast_classes(monkeypatch):
    monkeypatch.setitem(sys.modules, "radiomics", None)
    monkeypatch.setitem(sys.modules, "radiomics.featureextractor", None)
    bare = importlib.reload(drop)
    try:
        assert bare._ORIGINAL is None
        ex = bare.RadiomicsFeatureExtractor()
        with pytest.raises(ValueError, match="'glcm'.*pyradiomics.*not installed"):
            ex.enableFeatureClassByName("glcm")
        with pytest.raises(ValueError, match="'LoG'.*pyradiomics.*not installed"):
            ex.enableImageTypeByName("LoG")
        img, msk = _case("breast1")
        res = ex.execute(img, msk)
        assert np.isfinite(res["original_firstorder_Entropy"])
        assert not any(k.startswith("original_glcm") for k in res)
    finally:
        monkeypatch.undo()
        importlib.reload(drop)


def _errors_or_result(ex, img, msk, **kw):
    try:
        return ex.execute(img, msk, **kw)
    except Exception as exc:   # the same exception type and message as pyradiomics
        return (type(exc).__name__, str(exc))


@pytest.mark.parametrize("variant", ["two parts", "float image", "origin within tolerance", "absent label",
                                     "one voxel", "too small", "flat", "resampled", "resegmented", "normalized",
                                     "pre-cropped"])
def test_fast_provenance_and_checks_equal_pyradiomics(variant):
    """The drop-in's execute computes the original image's and mask's provenance (SHA-1, bounding box, voxel
    count, connected volumes, centre of mass) and checkMask's bounding box itself: the same diagnostics strings,
    features and refusals as pyradiomics on shapes and geometries that exercise each."""
    import SimpleITK as sitk

    rng = np.random.default_rng(3)
    arr = rng.normal(40, 20, (14, 30, 26)).astype(np.float64 if variant == "float image" else np.int16)
    lab = np.zeros(arr.shape, np.uint8)
    lab[3:8, 4:12, 5:11] = 1
    lab[9:12, 20:25, 15:22] = 1       # a second, separate part: VolumeNum 2
    lab[2, 2, 2] = 3
    lab[5, 6:9, 14:20] = 4             # one slice thick
    img, msk = sitk.GetImageFromArray(arr), sitk.GetImageFromArray(lab)
    for im in (img, msk):
        im.SetSpacing((0.8, 0.7, 2.0))
        im.SetOrigin((-10.0, 4.0, 7.5))
        im.SetDirection((0, 1, 0, 1, 0, 0, 0, 0, 1))
    label, settings = 1, {"binWidth": 10}
    if variant == "origin within tolerance":
        msk.SetOrigin((-10.0 + 1e-9, 4.0, 7.5))
    elif variant == "absent label":
        label = 2
    elif variant == "one voxel":
        label = 3
    elif variant == "too small":
        settings["minimumROISize"] = 500
    elif variant == "flat":
        label, settings["minimumROIDimensions"] = 4, 3
    elif variant == "resampled":   # diagnostics_*-interpolated_*
        settings.update(resampledPixelSpacing=[1.1, 1.3, 1.7], interpolator="sitkBSpline")
    elif variant == "resegmented":   # diagnostics_Mask-resegmented_*
        settings.update(resegmentRange=[-1, 1.5], resegmentMode="sigma")
    elif variant == "normalized":
        settings.update(normalize=True, normalizeScale=50)
    elif variant == "pre-cropped":
        settings.update(preCrop=True, padDistance=2)
    ours, theirs = drop.RadiomicsFeatureExtractor(**settings), ORIGINAL(**settings)
    for ex in (ours, theirs):
        ex.enableFeaturesByName(firstorder=[], glszm=["ZoneEntropy"], shape=["VoxelVolume"])
    a, b = _errors_or_result(ours, img, msk, label=label), _errors_or_result(theirs, img, msk, label=label)
    if isinstance(b, tuple):
        assert a == b
    else:
        assert b["diagnostics_Mask-original_VolumeNum"] == (2 if label == 1 else 1)
        prefix = {"resampled": "interpolated", "resegmented": "resegmented"}.get(variant)
        if prefix:
            assert f"diagnostics_Mask-{prefix}_Mean" in b
        _compare(a, b)


@pytest.mark.parametrize("case", ["breast1", pytest.param("brain1", marks=pytest.mark.slow),
                                  pytest.param("brain2", marks=pytest.mark.slow),
                                  pytest.param("lung1", marks=pytest.mark.slow),
                                  pytest.param("lung2", marks=pytest.mark.slow)])
def test_resampling_reads_a_window_and_stays_identical(case):
    """With resampling, the drop-in's loadImage resamples a window of the image around the label (B-spline
    coefficients on the window instead of the whole image): every key of pyradiomics' golden resampling
    configuration, every class, diagnostics included, the same as pyradiomics' own execute."""
    b = pd.read_csv(data_path("pyradiomics", "baseline", "baseline_firstorder.csv"), index_col=0)
    settings = ast.literal_eval(b.loc["diagnostics_Configuration_Settings", f"{case}_resampling"])
    assert settings["resampledPixelSpacing"] and settings["interpolator"] == "sitkBSpline"
    ours, theirs = drop.RadiomicsFeatureExtractor(**settings), ORIGINAL(**settings)
    for ex in (ours, theirs):
        ex.enableAllFeatures()
    img, msk = _case(case)
    a, r = ours.execute(img, msk), theirs.execute(img, msk)
    assert "diagnostics_Image-interpolated_Mean" in r
    _compare(a, r)
