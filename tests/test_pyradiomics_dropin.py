"""rlnfast.pyradiomics.RadiomicsFeatureExtractor against pyradiomics' own extractor: same keys, same order,
firstorder to 1e-9, delegated classes identical."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from conftest import PYRADIOMICS_HOWTO, data_path, require_module

radiomics = require_module("radiomics", PYRADIOMICS_HOWTO, module_level=True)
from radiomics import featureextractor  # noqa: E402

from rlnfast import pyradiomics as drop  # noqa: E402

radiomics.setVerbosity(logging.ERROR)
CASES = ["brain1", "breast1", "lung1", "lung2"]

# The shape of pyradiomics' example parameter file (examples/exampleSettings/Params.yaml): shape, firstorder,
# a glcm feature list, glrlm; BSpline interpolator named but resampling off; weightingNorm empty.
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


def _compare(ours, theirs):
    assert list(ours) == list(theirs), "keys or their order differ from pyradiomics"
    for k, v in theirs.items():
        if k.startswith("diagnostics_"):
            assert str(ours[k]) == str(v), k
        elif "_firstorder_" in k:
            assert float(ours[k]) == pytest.approx(float(v), rel=1e-9, abs=1e-12), k
        else:
            assert float(ours[k]) == float(v), k


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("params", ["default", "example", "firstorder_list"])
def test_same_keys_and_values(case, params, tmp_path):
    img, msk = data_path("pyradiomics", f"{case}_image.nrrd"), data_path("pyradiomics", f"{case}_label.nrrd")
    if params == "default":
        args = ()
    else:
        p = tmp_path / "params.yaml"
        p.write_text(PARAMS_YAML if params == "example" else FIRSTORDER_LIST)
        args = (str(p),)
    ours = drop.RadiomicsFeatureExtractor(*args)
    theirs = featureextractor.RadiomicsFeatureExtractor(*args)
    _compare(ours.execute(str(img), str(msk)), theirs.execute(str(img), str(msk)))


def test_class_api_and_execute_all():
    img = data_path("pyradiomics", "prostate_phantom_subvolume.nrrd")
    msk = data_path("pyradiomics", "prostate_phantom_subvolume-label.nrrd")
    ours = drop.RadiomicsFeatureExtractor(binWidth=10)
    ours.disableAllFeatures()
    ours.enableFeatureClassByName("firstorder")
    theirs = featureextractor.RadiomicsFeatureExtractor(binWidth=10)
    theirs.disableAllFeatures()
    theirs.enableFeatureClassByName("firstorder")
    table = ours.execute_all(str(img), str(msk))
    assert list(table["label"]) == [1, 7, 8, 9]
    for lab in (1, 7, 8, 9):
        ref = theirs.execute(str(img), str(msk), label=lab)
        _compare(ours.execute(str(img), str(msk), label=lab), ref)
        row = table[table.label == lab].iloc[0]
        for k, v in ref.items():
            if k.startswith("original_firstorder_"):
                assert row[k] == pytest.approx(float(v), rel=1e-9, abs=1e-12)


def test_unsupported_keys_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="'binWdth'"):
        drop.RadiomicsFeatureExtractor({"setting": {"binWdth": 3}})
    with pytest.raises(ValueError, match="'normalize'"):
        drop.RadiomicsFeatureExtractor({"setting": {"normalize": True}})
    with pytest.warns(UserWarning, match="symmetricalGLCM"):   # no glcm enabled: the key does nothing
        drop.RadiomicsFeatureExtractor({"setting": {"symmetricalGLCM": False}, "featureClass": {"firstorder": None}})


def test_without_pyradiomics_foreign_classes_are_refused(monkeypatch):
    monkeypatch.setattr(drop, "_pyradiomics", lambda: None)
    with pytest.warns(UserWarning, match="pyradiomics is not installed"):
        ex = drop.RadiomicsFeatureExtractor()
    with pytest.raises(ValueError, match="'glcm'"):
        ex.enableFeatureClassByName("glcm")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"\['shape'\]"):
        drop.RadiomicsFeatureExtractor({"featureClass": {"shape": None, "firstorder": None}})
    img, msk = data_path("pyradiomics", "breast1_image.nrrd"), data_path("pyradiomics", "breast1_label.nrrd")
    res = ex.execute(str(img), str(msk))
    assert "original_firstorder_Entropy" in res and not any(k.startswith("original_glcm") for k in res)
    assert np.isfinite(res["original_firstorder_Entropy"])
