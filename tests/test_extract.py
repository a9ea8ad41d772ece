"""rlnfast.extract: inputs, output table, parameters and bad input."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

import rlnfast
from rlnfast import _backends
from rlnfast.ops.firstorder import DEFAULT_FEATURES
from rlnfast.segmentation.synthetic import make_ct


@pytest.fixture(scope="module")
def ct():
    return make_ct(shape=(30, 64, 64), spacing=(0.7, 0.7, 2.5), n_nodes=12, seed=1)


def test_inputs_agree(ct, tmp_path):
    """NumPy arrays + spacing, SimpleITK images and files give the same table."""
    img, lab = ct.to_sitk()
    a = rlnfast.extract(ct.image, ct.labels, spacing=ct.spacing)
    b = rlnfast.extract(img, lab)
    sitk.WriteImage(img, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(lab, str(tmp_path / "mask.nrrd"))
    c = rlnfast.extract(tmp_path / "ct.nii.gz", str(tmp_path / "mask.nrrd"))
    cols = [f"original_firstorder_{f}" for f in DEFAULT_FEATURES]
    assert len(a) == ct.labels.max() == len(b) == len(c)
    np.testing.assert_array_equal(a[cols].to_numpy(), b[cols].to_numpy())
    # NIfTI stores spacing in float32: only TotalEnergy (spacing-scaled) may differ, at float32 precision
    exact = [col for col in cols if "TotalEnergy" not in col]
    np.testing.assert_array_equal(a[exact].to_numpy(), c[exact].to_numpy())
    np.testing.assert_allclose(a["original_firstorder_TotalEnergy"], c["original_firstorder_TotalEnergy"], rtol=1e-6)
    assert list(a.columns[:1]) == ["label"]
    assert all(col in a.columns for col in ["diagnostics_Mask-original_VoxelNum", "diagnostics_Mask-original_BoundingBox",
                                            "diagnostics_Configuration_Backend", "diagnostics_Configuration_Settings"])
    assert "original_firstorder_StandardDeviation" not in a.columns


def test_bounding_box_and_counts(ct):
    df = rlnfast.extract(ct.image, ct.labels, spacing=ct.spacing)
    for _, row in df.iterrows():
        idx = np.argwhere(ct.labels == row["label"])
        z0, y0, x0 = idx.min(0)
        z1, y1, x1 = idx.max(0)
        assert row["diagnostics_Mask-original_BoundingBox"] == (x0, y0, z0, x1 - x0 + 1, y1 - y0 + 1, z1 - z0 + 1)
        assert row["diagnostics_Mask-original_VoxelNum"] == len(idx)
        assert row["original_firstorder_Mean"] == pytest.approx(ct.image[ct.labels == row["label"]].mean(), rel=1e-12)


def test_params_file_and_settings(ct, tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("setting:\n  binCount: 16\n  label: [2, 3]\nfeatureClass:\n  firstorder: [Entropy, StandardDeviation]\n")
    df = rlnfast.extract(ct.image, ct.labels, p, spacing=ct.spacing)
    assert list(df["label"]) == [2, 3]
    feats = [c for c in df.columns if c.startswith("original_")]
    assert feats == ["original_firstorder_Entropy", "original_firstorder_StandardDeviation"]
    ref = rlnfast.extract(ct.image, ct.labels, {"setting": {"binCount": 16}}, spacing=ct.spacing)
    assert df["original_firstorder_Entropy"].iloc[0] == ref.loc[ref.label == 2, "original_firstorder_Entropy"].iloc[0]
    # keyword settings override the file
    df2 = rlnfast.extract(ct.image, ct.labels, p, spacing=ct.spacing, label=1)
    assert list(df2["label"]) == [1]


def test_unknown_and_refused_keys(ct):
    with pytest.raises(ValueError, match="unknown setting key 'binWdth'"):
        rlnfast.extract(ct.image, ct.labels, {"setting": {"binWdth": 5}}, spacing=ct.spacing)
    # pyradiomics' preprocessing, image types and classes are supported (tests/test_pyradiomics_params.py);
    # voxel-based extraction and names pyradiomics does not have are refused by name
    with pytest.raises(ValueError, match="'kernelRadius'"):
        rlnfast.extract(ct.image, ct.labels, {"setting": {"kernelRadius": 2}}, spacing=ct.spacing)
    with pytest.raises(ValueError, match="unknown feature class 'texture'"):
        rlnfast.extract(ct.image, ct.labels, {"featureClass": {"texture": None}}, spacing=ct.spacing)
    with pytest.raises(ValueError, match="imageType 'Sobel'"):
        rlnfast.extract(ct.image, ct.labels, {"imageType": {"Sobel": {}}}, spacing=ct.spacing)


def _img(shape=(4, 5, 6), spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0), dtype=np.int16):
    im = sitk.GetImageFromArray(np.arange(np.prod(shape)).reshape(shape).astype(dtype))
    im.SetSpacing(spacing)
    im.SetOrigin(origin)
    return im


def _mask(**kw):
    m = _img(dtype=np.uint8, **kw)
    arr = np.zeros(sitk.GetArrayFromImage(m).shape, np.uint8)
    arr[1:3, 1:3, 1:3] = 1
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(m)
    return out


def test_geometry_mismatch_errors():
    img = _img()
    with pytest.raises(ValueError, match=r"spacing \(1, 1, 2.5\) differs from image spacing \(1, 1, 2\)"):
        rlnfast.extract(img, _mask(spacing=(1.0, 1.0, 2.5)))
    with pytest.raises(ValueError, match="origin"):
        rlnfast.extract(img, _mask(origin=(0.0, 0.5, 0.0)))
    with pytest.raises(ValueError, match="size"):
        rlnfast.extract(img, _mask(shape=(4, 5, 7)))
    m = _mask()
    m.SetDirection((0, 1, 0, 1, 0, 0, 0, 0, 1))
    with pytest.raises(ValueError, match="direction"):
        rlnfast.extract(img, m)
    # within geometryTolerance it passes
    rlnfast.extract(img, _mask(origin=(0.0, 1e-4, 0.0)), {"setting": {"geometryTolerance": 1e-3}})


def test_bad_input_errors(tmp_path):
    img = _img()
    arr = sitk.GetArrayFromImage(_mask())
    with pytest.raises(ValueError, match="integer label map.*float32"):
        rlnfast.extract(img, arr.astype(np.float32))
    with pytest.raises(ValueError, match=r"label\(s\) \[3\] not present"):
        rlnfast.extract(img, arr, {"setting": {"label": 3}})
    with pytest.raises(ValueError, match="empty"):
        rlnfast.extract(img, np.zeros_like(arr))
    with pytest.raises(ValueError, match="3-D"):
        rlnfast.extract(np.zeros((2, 4, 5, 6)), np.zeros((2, 4, 5, 6), np.uint8))
    with pytest.raises(FileNotFoundError, match="nope.nii.gz"):
        rlnfast.extract(tmp_path / "nope.nii.gz", arr)
    bad = tmp_path / "corrupt.nii.gz"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="corrupt.nii.gz"):
        rlnfast.extract(bad, arr)
    f = sitk.GetArrayFromImage(img).astype(np.float32)
    f[2, 2, 2] = np.inf
    with pytest.raises(ValueError, match="NaN/inf.*label 1"):
        rlnfast.extract(f, arr, spacing=(1.0, 1.0, 2.0))


def test_empty_region_after_dropping_nonfinite():
    arr = np.zeros((3, 4, 5), np.uint8)
    arr[0, 0, 0] = 1
    arr[2, 2:4, 2:4] = 2
    img = np.ones(arr.shape, np.float32)
    img[0, 0, 0] = np.nan
    df = rlnfast.extract(img, arr, {"setting": {"nonFinite": "drop"}}, spacing=(1, 1, 1))
    row1 = df[df.label == 1].iloc[0]
    assert np.isnan(row1["original_firstorder_Entropy"])
    assert "empty" in row1["diagnostics_Reason"]
    assert df[df.label == 2].iloc[0]["original_firstorder_Mean"] == 1.0


def test_connected_components_option():
    arr = np.zeros((5, 10, 10), np.uint8)
    arr[1:3, 1:3, 1:3] = 1
    arr[1:3, 6:9, 6:9] = 1
    df = rlnfast.extract(np.ones(arr.shape, np.int16), arr, {"setting": {"connectedComponents": True}},
                         spacing=(1, 1, 1))
    assert list(df["label"]) == [1, 2] and list(df["source_label"]) == [1, 1]
    assert list(df["diagnostics_Mask-original_VoxelNum"]) == [8, 18]


def test_backend_selection(monkeypatch):
    assert _backends.resolve("cpu") == "cpu"
    assert _backends.resolve("numpy") == "numpy"
    assert _backends.resolve("auto") in ("cuda", "cupy", "cpu")
    monkeypatch.setenv("RLNFAST_BACKEND", "numpy")
    assert _backends.resolve("auto") == "numpy"
    with pytest.raises(ValueError, match="expected one of"):
        _backends.resolve("tpu")
    for name in ("cuda", "cupy"):
        ok, why = _backends.available(name)
        if not ok:
            with pytest.raises(rlnfast.BackendUnavailable, match=name):
                _backends.resolve(name)
            assert why


def test_build_info_and_import_touches_no_gpu():
    info = rlnfast.build_info()
    assert info["cpu"] is True and set(info["backends"]) == {"cuda", "cupy", "cpu", "numpy"}
    for st in info["backends"].values():
        assert st["reason"]
    code = "import sys, rlnfast; print('cupy' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"], "importing rlnfast must not import GPU libraries"


def test_numpy_backend_matches_cpu(ct):
    a = rlnfast.extract(ct.image, ct.labels, spacing=ct.spacing, backend="cpu")
    b = rlnfast.extract(ct.image, ct.labels, spacing=ct.spacing, backend="numpy")
    cols = [c for c in a.columns if c.startswith("original_firstorder_")]
    np.testing.assert_allclose(a[cols].to_numpy(), b[cols].to_numpy(), rtol=1e-9)


def test_sitk_images_read_without_copy():
    """A SimpleITK image is read through a view of its pixel buffer (no copy), read-only, and the view keeps the
    image alive after the caller drops it."""
    import gc

    import SimpleITK as sitk

    from rlnfast import io

    a = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    img = sitk.GetImageFromArray(a)
    vol = io.read_volume(img)
    assert np.shares_memory(vol.array, sitk.GetArrayViewFromImage(img))
    assert not vol.array.flags.writeable
    del img
    gc.collect()
    np.testing.assert_array_equal(vol.array, a)
