"""pyradiomics' parameter files through rlnfast.extract, the CLI and the cohort runner: preprocessing, every image
type and every feature class, each key equal to what pyradiomics' own extractor returns (1e-9 relative), in
pyradiomics' order. The example parameter files are pyradiomics' examples/exampleSettings (Params.yaml,
exampleCT.yaml, exampleMR_3mm.yaml, exampleMR_NoResampling.yaml, exampleVoxel.yaml), their settings written out
without comments; exampleCT.yaml is spelled for pyradiomics 3 (imageType, Wavelet, MeshVolume, *AxisLength),
as pyradiomics 3 itself refuses the file's older spelling."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from conftest import PYRADIOMICS_HOWTO, data_path, require_module

radiomics = require_module("radiomics", PYRADIOMICS_HOWTO, module_level=True)
from radiomics import featureextractor  # noqa: E402

import rlnfast  # noqa: E402
from rlnfast.params import load_params  # noqa: E402

radiomics.setVerbosity(logging.ERROR)
ORIGINAL = getattr(featureextractor.RadiomicsFeatureExtractor, "_rlnfast_original",
                   featureextractor.RadiomicsFeatureExtractor)

GLCM_NO_SUMAVERAGE = ("['Autocorrelation', 'JointAverage', 'ClusterProminence', 'ClusterShade', 'ClusterTendency', "
                      "'Contrast', 'Correlation', 'DifferenceAverage', 'DifferenceEntropy', 'DifferenceVariance', "
                      "'JointEnergy', 'JointEntropy', 'Imc1', 'Imc2', 'Idm', 'Idmn', 'Id', 'Idn', 'InverseVariance', "
                      "'MaximumProbability', 'SumEntropy', 'SumSquares']")
EXAMPLES = {
    "Params": f"""
setting: {{binWidth: 25, label: 1, interpolator: 'sitkBSpline', resampledPixelSpacing: , weightingNorm: }}
imageType: {{Original: {{}}}}
featureClass: {{shape: , firstorder: [], glcm: {GLCM_NO_SUMAVERAGE}, glrlm: , glszm: , gldm: }}
""",
    "exampleCT": """
imageType: {Original: {}, LoG: {sigma: [1.0, 2.0, 3.0, 4.0, 5.0]}, Wavelet: {}}
featureClass:
  shape: ['MeshVolume', 'SurfaceArea', 'SurfaceVolumeRatio', 'Sphericity', 'SphericalDisproportion',
          'Maximum3DDiameter', 'Maximum2DDiameterSlice', 'Maximum2DDiameterColumn', 'Maximum2DDiameterRow',
          'MajorAxisLength', 'MinorAxisLength', 'LeastAxisLength', 'Elongation', 'Flatness']
  firstorder:
  glcm:
  glrlm:
  glszm:
setting: {interpolator: 'sitkBSpline', resampledPixelSpacing: [1, 1, 1], padDistance: 10, binWidth: 25,
          voxelArrayShift: 1000, label: 1}
""",
    "exampleMR_3mm": f"""
imageType: {{Original: {{}}, LoG: {{sigma: [2.0, 3.0, 4.0, 5.0]}}, Wavelet: {{}}}}
featureClass: {{shape: , firstorder: , glcm: {GLCM_NO_SUMAVERAGE}, glrlm: , glszm: , gldm: }}
setting: {{normalize: true, normalizeScale: 100, interpolator: 'sitkBSpline', resampledPixelSpacing: [2, 2, 2],
          binWidth: 5, voxelArrayShift: 300, label: 1}}
""",
    "exampleMR_NoResampling": f"""
imageType: {{Original: {{}}, LoG: {{sigma: [1.0, 3.0, 5.0]}}, Wavelet: {{}}}}
featureClass: {{shape: , firstorder: , glcm: {GLCM_NO_SUMAVERAGE}, glrlm: , glszm: , gldm: }}
setting: {{normalize: true, normalizeScale: 100, preCrop: true, force2D: true, force2Ddimension: 0, binWidth: 5,
          voxelArrayShift: 300, label: 1}}
""",
    "exampleVoxel": """
imageType: {Original: {}}
featureClass: {glcm: }
setting: {binWidth: 25, label: 1}
voxelSetting: {kernelRadius: 2, maskedKernel: true, initValue: nan, voxelBatch: 10000}
""",
}
# Every filtered image type, with resampling, normalisation and resegmentation (one pass over each).
FILTERS = """
imageType: {Original: {}, LoG: {sigma: [1.0, 2.5]}, Wavelet: {}, Square: {}, SquareRoot: {}, Logarithm: {},
            Exponential: {}, Gradient: {}, LBP2D: {}, LBP3D: {}}
featureClass: {firstorder: , glcm: [Contrast, Idmn]}
setting: {binWidth: 10, label: 1, SETTINGS}
"""


def _files(tmp_path, name, text):
    p = tmp_path / f"{name}.yaml"
    p.write_text(text)
    return str(p)


def _case(case):
    if case == "prostate":
        return (str(data_path("pyradiomics", "prostate_phantom_subvolume.nrrd")),
                str(data_path("pyradiomics", "prostate_phantom_subvolume-label.nrrd")))
    return str(data_path("pyradiomics", f"{case}_image.nrrd")), str(data_path("pyradiomics", f"{case}_label.nrrd"))


def _assert_row_equals(row: pd.Series, ref: dict, rel=1e-9):
    keys = [k for k in ref if not k.startswith("diagnostics_")]
    ours = [c for c in row.index if not c.startswith("diagnostics_") and c not in ("label", "source_label", "component")]
    assert ours == keys, "feature keys or their order differ from pyradiomics"
    for k in keys:
        assert float(row[k]) == pytest.approx(float(ref[k]), rel=rel, abs=1e-12), k


def _pyradiomics(params, img, msk, label=None):
    return ORIGINAL(params).execute(img, msk, label=label)


@pytest.mark.parametrize("example, case", [
    ("Params", "breast1"), ("exampleCT", "breast1"), ("exampleMR_3mm", "brain1"), ("exampleMR_NoResampling", "breast1"),
    pytest.param("Params", "lung2", marks=pytest.mark.slow),
    pytest.param("exampleCT", "lung1", marks=pytest.mark.slow),
    pytest.param("exampleMR_3mm", "brain2", marks=pytest.mark.slow),
    pytest.param("exampleMR_NoResampling", "brain1", marks=pytest.mark.slow),
])
def test_example_files_equal_pyradiomics(example, case, tmp_path):
    p = _files(tmp_path, example, EXAMPLES[example])
    img, msk = _case(case)
    df = rlnfast.extract(img, msk, p, backend="cpu")
    assert len(df) == 1 and df["diagnostics_Reason"].iloc[0] == ""
    _assert_row_equals(df.iloc[0], _pyradiomics(p, img, msk))


def test_example_voxel_refused_by_name(tmp_path):
    p = _files(tmp_path, "exampleVoxel", EXAMPLES["exampleVoxel"])
    with pytest.raises(ValueError, match=r"exampleVoxel\.yaml.*voxelSetting.*kernelRadius"):
        rlnfast.extract(*_case("breast1"), p)


@pytest.mark.parametrize("settings", [
    "interpolator: sitkBSpline",
    "normalize: true, normalizeScale: 100, removeOutliers: 3, resampledPixelSpacing: [2, 2, 0], "
    "resegmentRange: [-2, 2], resegmentMode: sigma, resegmentShape: true, force2D: true",
    pytest.param("preCrop: true, padDistance: 3, resegmentRange: [0.2], resegmentMode: relative",
                 marks=pytest.mark.slow),
])
def test_every_image_type_equal_pyradiomics(settings, tmp_path):
    from rlnfast.params import lbp3d_missing
    from rlnfast.preprocessing import sph_harm_shim

    pytest.importorskip("skimage", reason="LBP2D needs scikit-image")
    text = FILTERS.replace("SETTINGS", settings)
    if lbp3d_missing():
        # pyradiomics' LBP3D imports scipy.special.sph_harm (gone in SciPy 1.17) and trimesh, and yields nothing
        # without them: rlnfast refuses it by name instead
        with pytest.raises(ValueError, match=f"imageType 'LBP3D' needs {lbp3d_missing()}"):
            rlnfast.extract(*_case("breast1"), _files(tmp_path, "lbp3d", text))
        text = text.replace(", LBP3D: {}", "")
    p = _files(tmp_path, "filters", text)
    img, msk = _case("breast1")
    df = rlnfast.extract(img, msk, p, backend="cpu")
    with sph_harm_shim():   # pyradiomics' LBP3D under SciPy >= 1.17 needs the same shim
        ref = _pyradiomics(p, img, msk)
    wavelets = ("wavelet-LH_", "wavelet-LL_") if "force2D" in settings else ("wavelet-LLH_", "wavelet-LLL_")
    for prefix in ("log-sigma-1-0-mm-3D_", "log-sigma-2-5-mm-3D_", *wavelets, "square_",
                   "squareroot_", "logarithm_", "exponential_", "gradient_", "lbp-2D_", "lbp-3D-m1_", "lbp-3D-k_"):
        if not prefix.startswith("lbp-3D") or ("force2D" not in settings and not lbp3d_missing()):
            assert f"{prefix}firstorder_Mean" in ref
    _assert_row_equals(df.iloc[0], ref)


def test_all_labels_of_a_label_map_at_once(tmp_path):
    """Every region of a label map in one call, each equal to pyradiomics' execute(label=L): resampling on each
    label's own grid, shape and texture classes on each label's crop."""
    p = _files(tmp_path, "p", """
setting: {binWidth: 10, resampledPixelSpacing: [1.5, 1.5, 1.5], padDistance: 4, minimumROIDimensions: 1}
imageType: {Original: {}, LoG: {sigma: [2.0]}}
featureClass: {shape: [MeshVolume, Sphericity], firstorder: [Mean, Entropy, TotalEnergy], glszm: , ngtdm: }
""")
    img, msk = _case("prostate")
    df = rlnfast.extract(img, msk, p, backend="cpu")
    assert list(df["label"]) == [1, 7, 8, 9]
    for i, lab in enumerate(df["label"]):
        _assert_row_equals(df.iloc[i], _pyradiomics(p, img, msk, label=int(lab)))


def test_refused_region_has_nan_and_pyradiomics_reason(tmp_path):
    img, msk = _case("prostate")
    p = _files(tmp_path, "p", "setting: {minimumROISize: 200}\nfeatureClass: {firstorder: , glcm: [Contrast]}\n")
    df = rlnfast.extract(img, msk, p, backend="cpu")
    counts = dict(zip(df["label"], df["diagnostics_Mask-original_VoxelNum"]))
    small = df[[counts[lab] <= 200 for lab in df["label"]]]
    big = df[[counts[lab] > 200 for lab in df["label"]]]
    assert len(small) and len(big)
    assert small["original_glcm_Contrast"].isna().all() and small["original_firstorder_Mean"].isna().all()
    assert small["diagnostics_Reason"].str.contains("Size of the ROI is too small").all()
    assert big["original_glcm_Contrast"].notna().all()
    with pytest.raises(ValueError, match="Size of the ROI is too small"):
        _pyradiomics(p, img, msk, label=int(small["label"].iloc[0]))


def test_cli_and_cohort_run_delegated_classes(tmp_path):
    from rlnfast.cli import main

    p = _files(tmp_path, "Params", EXAMPLES["Params"])
    img, msk = _case("breast1")
    out = tmp_path / "one.csv"
    assert main(["extract", img, msk, "-p", p, "-o", str(out), "-q"]) == 0
    batch = tmp_path / "batch.csv"
    pd.DataFrame({"ID": ["a"], "Image": [img], "Mask": [msk]}).to_csv(batch, index=False)
    out2 = tmp_path / "cohort.csv"
    assert main(["extract", str(batch), "-p", p, "-o", str(out2), "-q"]) == 0
    ref = _pyradiomics(p, img, msk)
    for table in (pd.read_csv(out), pd.read_csv(out2)):
        _assert_row_equals(table.iloc[0][[c for c in table.columns if c not in ("ID", "Image", "Mask")]], ref)


def test_without_pyradiomics_delegated_classes_and_filters_are_named(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "radiomics" else real(name, *a))
    with pytest.raises(ValueError, match="featureClass 'glcm'.*pyradiomics.*not installed"):
        load_params({"featureClass": {"firstorder": None, "glcm": None}})
    with pytest.raises(ValueError, match="imageType 'LoG'.*pyradiomics.*not installed"):
        load_params({"imageType": {"LoG": {"sigma": [1.0]}}})
    with pytest.raises(ValueError, match="'normalize'.*pyradiomics.*not installed"):
        load_params({"setting": {"normalize": True}})
    assert load_params({"featureClass": {"firstorder": None}}).feature_classes == {"firstorder": None}


@pytest.mark.parametrize("params, key", [
    ({"setting": {"resegmentMode": "percent"}}, "resegmentMode"),
    ({"setting": {"resampledPixelSpacing": [1, 1]}}, "resampledPixelSpacing"),
    ({"setting": {"interpolator": "sitkCubic"}}, "interpolator"),
    ({"setting": {"normalize": True}, "imageType": {"Elasticity": {}}}, "normalize"),
    ({"featureClass": {"shape2D": None}}, "force2D"),
    ({"setting": {"weightingNorm": "taxicab"}}, "weightingNorm"),
])
def test_bad_settings_name_the_key(params, key):
    with pytest.raises(ValueError, match=f"'?{key}'?"):
        load_params(params)


def test_delegated_feature_lists_checked_by_name():
    with pytest.raises(ValueError, match=r"featureClass shape: unknown feature\(s\) \['Volume'\]"):
        load_params({"featureClass": {"shape": ["Volume"]}})
    assert np.isin(["MeshVolume", "Compactness1"], rlnfast.features.feature_classes()["shape"].features).all()


def test_sph_harm_shim_is_scipys_old_sph_harm():
    """The shim for SciPy's removed sph_harm(m, n, theta=azimuth, phi=polar), checked against the definition
    SciPy documented for it, written out independently: sqrt((2n+1)/(4 pi) (n-m)!/(n+m)!) P_n^m(cos phi)
    e^{i m theta}, P_n^m with the Condon-Shortley phase, written out for n <= 2 (and m < 0 by
    Y_n^-m = (-1)^m conj(Y_n^m)); and, where this SciPy still has sph_harm, against it."""
    import math

    import scipy.special

    from rlnfast.preprocessing import _sph_harm, sph_harm_shim

    if not hasattr(scipy.special, "sph_harm_y"):
        pytest.skip("this SciPy has no sph_harm_y (the shim is not used)")
    az, pol = np.meshgrid(np.linspace(-np.pi, 2 * np.pi, 37), np.linspace(0, np.pi, 19))
    x = np.cos(pol)
    s = np.sin(pol)
    legendre = {(0, 0): np.ones_like(x), (1, 0): x, (1, 1): -s, (2, 0): 0.5 * (3 * x ** 2 - 1),
                (2, 1): -3 * x * s, (2, 2): 3 * s ** 2}
    for n in range(3):
        for m in range(-n, n + 1):
            am = abs(m)
            y = (math.sqrt((2 * n + 1) / (4 * math.pi) * math.factorial(n - am) / math.factorial(n + am))
                 * legendre[(n, am)] * np.exp(1j * am * az))
            if m < 0:
                y = (-1) ** am * np.conj(y)
            np.testing.assert_allclose(_sph_harm(m, n, az, pol), y, rtol=0, atol=1e-14)
    with sph_harm_shim():
        from scipy.special import sph_harm   # what pyradiomics imports

        if sph_harm is not _sph_harm:   # an older SciPy: its own function, the shim must agree with it
            np.testing.assert_allclose(_sph_harm(1, 2, az, pol), sph_harm(1, 2, az, pol), rtol=0, atol=1e-14)
    assert hasattr(scipy.special, "sph_harm") == (sph_harm is not _sph_harm)   # removed again on exit


def test_lbp3d_equal_pyradiomics_with_the_shim(tmp_path):
    """LBP3D through rlnfast.extract and through the drop-in equals pyradiomics' own LBP3D (run with the same
    shim), with non-default levels and several regions of a label map."""
    from rlnfast.pyradiomics import RadiomicsFeatureExtractor as Dropin
    from rlnfast.preprocessing import sph_harm_shim

    pytest.importorskip("trimesh", reason="pyradiomics' LBP3D needs trimesh")
    p = _files(tmp_path, "lbp3d", """
imageType: {LBP3D: {lbp3DLevels: 3}}
featureClass: {firstorder: [Mean, Entropy, Kurtosis], glcm: [Contrast]}
setting: {binWidth: 0.5, minimumROIDimensions: 1}
""")
    img, msk = _case("prostate")
    df = rlnfast.extract(img, msk, p, backend="cpu")
    assert list(df["label"]) == [1, 7, 8, 9]
    for i, lab in enumerate(df["label"]):
        with sph_harm_shim():
            ref = _pyradiomics(p, img, msk, label=int(lab))
        assert "lbp-3D-m3_firstorder_Mean" in ref and "lbp-3D-k_glcm_Contrast" in ref
        _assert_row_equals(df.iloc[i], ref)
        ours = Dropin(p).execute(img, msk, label=int(lab))
        assert list(ours) == list(ref)
        _assert_row_equals(pd.Series({k: v for k, v in ours.items() if not k.startswith("diagnostics_")}), ref)


@pytest.mark.parametrize("how", ["origin and spacing", "size"])
def test_correct_mask_resamples_as_pyradiomics(how, tmp_path):
    """correctMask: a label map on another grid (origin shifted by a fraction of a voxel and coarser spacing, or
    only a different size) is resampled onto the image as pyradiomics' checkMask does; every key equal to
    pyradiomics' execute with correctMask, through extract and the drop-in. Without correctMask: refused."""
    import SimpleITK as sitk

    from rlnfast.pyradiomics import RadiomicsFeatureExtractor as Dropin

    img_path, msk_path = _case("breast1")
    img, msk = sitk.ReadImage(img_path), sitk.ReadImage(msk_path)
    grid = sitk.Image(msk)
    if how == "origin and spacing":
        sp = np.array(msk.GetSpacing())
        grid = sitk.Image([int(s * 0.8) for s in msk.GetSize()], msk.GetPixelID())
        grid.SetSpacing(tuple(sp * 1.25))
        grid.SetDirection(msk.GetDirection())
        grid.SetOrigin(tuple(np.array(msk.GetOrigin()) + 0.37 * sp))
    else:
        grid = sitk.Image([s + 3 for s in msk.GetSize()], msk.GetPixelID())
        grid.SetSpacing(msk.GetSpacing())
        grid.SetOrigin(msk.GetOrigin())
        grid.SetDirection(msk.GetDirection())
    moved = sitk.Resample(msk, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    moved_path = str(tmp_path / "moved.nrrd")
    sitk.WriteImage(moved, moved_path)
    p = _files(tmp_path, "p", "setting: {binWidth: 25, correctMask: true}\n"
                              "featureClass: {shape: [MeshVolume, VoxelVolume], firstorder: , glcm: [Contrast]}\n")
    ref = _pyradiomics(p, img_path, moved_path)
    assert "diagnostics_Mask-corrected_VoxelNum" in ref
    df = rlnfast.extract(img_path, moved_path, p, backend="cpu")
    assert len(df) == 1
    _assert_row_equals(df.iloc[0], ref)
    ours = Dropin(p).execute(img_path, moved_path)
    assert list(ours) == list(ref) and all(str(ours[k]) == str(ref[k]) for k in ref if k.startswith("diagnostics_M"))
    with pytest.raises(ValueError, match="does not match"):
        rlnfast.extract(img_path, moved_path, {"setting": {"binWidth": 25}})
    with pytest.raises(ValueError, match="'correctMask' with 'resampledPixelSpacing'"):
        rlnfast.extract(img_path, moved_path, {"setting": {"correctMask": True, "resampledPixelSpacing": [2, 2, 2]}})
