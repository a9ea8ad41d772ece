"""What a new user meets first (issue 15): shareable outputs, traceable batch rows, voxels named in the
volume's own coordinates, honest voxel counts, no silent 1 mm spacing, 2-D refused, and messages that say
where the problem is and what was expected."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

import rlnfast
from rlnfast import cohort
from rlnfast.cli import main as cli
from rlnfast.params import load_params


def _case(tmp: Path, name="a", spacing=(0.8, 0.8, 2.0), seed=0):
    """A small CT + label map written as NIfTI files, with a non-trivial origin and direction."""
    rng = np.random.default_rng(seed)
    ct = rng.normal(40, 30, (12, 30, 34)).astype(np.int16)
    lab = np.zeros(ct.shape, np.uint8)
    lab[3:8, 5:15, 6:16] = 1
    lab[4:9, 18:26, 20:30] = 2
    img, msk = sitk.GetImageFromArray(ct), sitk.GetImageFromArray(lab)
    for im in (img, msk):
        im.SetSpacing(spacing)
        im.SetOrigin((-10.0, 5.0, 100.0))
        im.SetDirection((0, 1, 0, -1, 0, 0, 0, 0, 1))   # rotated, so index and physical axes differ
    ip, mp = tmp / f"{name}_ct.nii.gz", tmp / f"{name}_mask.nii.gz"
    sitk.WriteImage(img, str(ip))
    sitk.WriteImage(msk, str(mp))
    return ip, mp


# ------------------------------------------------------------------------------------------ permissions

@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_outputs_follow_the_umask(tmp_path, umask_022):
    ip, mp = _case(tmp_path)
    pd.DataFrame({"ID": ["a"], "Image": [ip.name], "Mask": [mp.name]}).to_csv(tmp_path / "batch.csv", index=False)
    out = tmp_path / "out"
    assert cli(["extract", str(tmp_path / "batch.csv"), "-o", str(out / "features.csv"), "--out-dir",
                str(out / "cases"), "-q"]) == 0
    assert cli(["extract", str(tmp_path / "batch.csv"), "-o", str(out / "features.parquet"), "--out-dir",
                str(out / "cases"), "-q"]) == 0
    assert cli(["maps", str(ip), "-o", str(out / "maps") + "/"]) == 0
    files = [f for f in out.rglob("*") if f.is_file()]
    assert len(files) >= 7, files   # features.csv/.parquet, errors.csv, case table + sidecar, E, DEM
    assert {f.name for f in files} >= {"features.csv", "features.parquet", "errors.csv", "E.nii.gz", "DEM.nii.gz"}
    for f in files:
        assert _mode(f) == 0o644, f"{f}: mode {oct(_mode(f))}, expected 0644 under umask 022"
    os.umask(0o077)
    assert cli(["maps", str(ip), "-o", str(tmp_path / "private") + "/"]) == 0
    assert _mode(tmp_path / "private" / "E.nii.gz") == 0o600   # the umask decides, not rlnfast


# ------------------------------------------------------------------------------------------ batch columns

def test_batch_output_carries_image_mask_and_label(tmp_path):
    ip, mp = _case(tmp_path, "a")
    iq, mq = _case(tmp_path, "b", seed=1)
    batch = pd.DataFrame({"ID": ["a", "b"], "Image": [ip.name, str(iq)], "Mask": [mp.name, str(mq)],
                          "Label": ["2", ""]})
    batch.to_csv(tmp_path / "batch.csv", index=False)
    res = cohort.run(tmp_path / "batch.csv", None, tmp_path / "out", progress=False)
    t = res.table
    assert list(t.columns[:4]) == ["ID", "Image", "Mask", "Label"]
    assert list(t["ID"]) == ["a", "b", "b"] and list(t["label"]) == [2, 1, 2]
    assert list(t["Image"]) == [str(ip.resolve()), str(iq), str(iq)]   # relative paths resolved from the CSV
    assert list(t["Mask"]) == [str(mp.resolve()), str(mq), str(mq)]
    assert list(t["Label"]) == ["2", "", ""]
    written = pd.read_csv(tmp_path / "out" / "features.csv", dtype=str, keep_default_na=False)
    assert list(written.columns[:4]) == ["ID", "Image", "Mask", "Label"] and written["Mask"].iloc[0] == str(mp.resolve())
    # without an ID column (and without Label) the rows still trace back to their files
    pd.DataFrame({"Image": [str(ip)], "Mask": [str(mp)]}).to_csv(tmp_path / "b2.csv", index=False)
    t2 = cohort.run(tmp_path / "b2.csv", None, tmp_path / "out2", progress=False).table
    assert list(t2.columns[:3]) == ["Image", "Mask", "label"] and set(t2["Image"]) == {str(ip)}


# ------------------------------------------------------------------------------------------ voxels named

def test_nonfinite_voxel_named_in_volume_index_and_physical_position(tmp_path):
    ip, mp = _case(tmp_path)
    img = sitk.Cast(sitk.ReadImage(str(ip)), sitk.sitkFloat32)
    arr = sitk.GetArrayFromImage(img)
    arr[6, 11, 13] = np.nan                               # inside label 1, far from the crop's corner
    bad = sitk.GetImageFromArray(arr)
    bad.CopyInformation(img)
    phys = bad.TransformIndexToPhysicalPoint((13, 11, 6))
    want_pos = "(" + ", ".join(f"{v:.6g}" for v in phys) + ")"
    # nonFinite: error (the gather), DEM (its crop reads the voxel whatever nonFinite says)
    for params in ({"setting": {"nonFinite": "error"}},
                   {"setting": {"nonFinite": "drop"}, "imageType": {"DEM": {}}}):
        with pytest.raises(ValueError) as e:
            rlnfast.extract(bad, str(mp), params, backend="cpu")
        assert "z,y,x=(6, 11, 13)" in str(e.value) and want_pos in str(e.value), str(e.value)
    # whole-volume E map of an array: the index in that array
    from rlnfast.ops import elasticity as eop

    with pytest.raises(ValueError, match=r"z,y,x=\(6, 11, 13\)"):
        eop.elasticity(arr, backend="cpu")
    with pytest.raises(ValueError) as e:
        eop.elasticity(bad, backend="cpu")
    assert want_pos in str(e.value)


def test_nonfinite_drop_counts_the_voxels_used(tmp_path):
    ip, mp = _case(tmp_path)
    img = sitk.Cast(sitk.ReadImage(str(ip)), sitk.sitkFloat32)
    arr = sitk.GetArrayFromImage(img)
    arr[6, 11, 13] = np.nan
    arr[4, 8, 9] = np.inf
    bad = sitk.GetImageFromArray(arr)
    bad.CopyInformation(img)
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(mp)))
    params = {"setting": {"nonFinite": "drop", "fractalMinBoxSize": 0.8},
              "imageType": {"Original": {}, "Elasticity": {}}, "featureClass": {"firstorder": None, "fractal": None}}
    df = rlnfast.extract(bad, str(mp), params, backend="cpu").set_index("label")
    n1, n2 = int((lab == 1).sum()), int((lab == 2).sum())
    assert df.loc[1, "diagnostics_Mask-original_VoxelNum"] == n1 - 2
    assert df.loc[1, "diagnostics_Mask-original_NonFiniteDropped"] == 2
    assert df.loc[2, "diagnostics_Mask-original_VoxelNum"] == n2
    assert df.loc[2, "diagnostics_Mask-original_NonFiniteDropped"] == 0
    # first-order on the voxels kept equals first-order of those voxels given as a region of their own
    keep = (lab == 1) & np.isfinite(arr)
    ref = rlnfast.extract(np.where(keep, arr, 0).astype(np.float32), keep.astype(np.uint8),
                          spacing=bad.GetSpacing(), backend="cpu")
    assert df.loc[1, "original_firstorder_Mean"] == pytest.approx(ref["original_firstorder_Mean"].iloc[0], rel=1e-12)
    # DBC on E of a crop with a dropped voxel: NaN with the reason, like Original (no crop-coordinate error)
    assert np.isnan(df.loc[1, "E_original_fractal_DBCFD"]) and np.isfinite(df.loc[2, "E_original_fractal_DBCFD"])
    assert "non-finite" in df.loc[1, "diagnostics_Elasticity_fractal_Reason"]


# ------------------------------------------------------------------------------------------ spacing, 2-D

def test_arrays_need_spacing():
    ct = np.zeros((4, 6, 7), np.int16)
    lab = np.zeros(ct.shape, np.uint8)
    lab[1:3, 2:4, 2:5] = 1
    with pytest.raises(ValueError, match=r"no voxel spacing.*spacing=\(1, 1, 1\)"):
        rlnfast.extract(ct, lab)
    df = rlnfast.extract(ct, lab, spacing=(1, 1, 1))
    assert df["diagnostics_Image-original_Spacing"].iloc[0] == (1.0, 1.0, 1.0)
    df = rlnfast.extract(ct, lab, spacing=(0.5, 0.5, 3.0))
    assert df["diagnostics_Image-original_Spacing"].iloc[0] == (0.5, 0.5, 3.0)
    from rlnfast.ops import dem as dop
    from rlnfast.ops import elasticity as eop

    with pytest.raises(ValueError, match="no voxel spacing"):
        dop.dem(ct.astype(np.float32), backend="cpu")
    assert eop.elasticity(ct, backend="cpu").shape == ct.shape   # E is voxel-wise: no spacing needed
    # an array label map on an image file's grid takes the file's spacing
    img = sitk.GetImageFromArray(ct)
    img.SetSpacing((0.7, 0.7, 2.5))
    df = rlnfast.extract(img, lab)
    assert df["diagnostics_Image-original_Spacing"].iloc[0] == pytest.approx((0.7, 0.7, 2.5))


def test_2d_images_are_refused_by_name(tmp_path):
    sl = np.zeros((6, 7), np.int16)
    lab = np.zeros((6, 7), np.uint8)
    lab[2:4, 2:4] = 1
    with pytest.raises(ValueError, match=r"image: a 2-D image of shape \(6, 7\) is not supported.*\(1, y, x\)"):
        rlnfast.extract(sl, lab, spacing=(1, 1, 1))
    f2 = tmp_path / "slice.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(sl), str(f2))
    with pytest.raises(ValueError, match=r"slice.nrrd.*2-D image of size \(7, 6\) is not supported"):
        rlnfast.extract(f2, lab[None], spacing=(1, 1, 1))
    # one slice as a 3-D volume of one slice is fine
    df = rlnfast.extract(sl[None], lab[None], spacing=(0.7, 0.7, 5.0))
    assert df["diagnostics_Mask-original_VoxelNum"].iloc[0] == 4


# ------------------------------------------------------------------------------------------ messages

@pytest.mark.parametrize("params, expected", [
    ({"featureClass": {"firstoder": None}}, "unknown feature class 'firstoder'; did you mean 'firstorder'?"),
    ({"featureClass": {"fractl": None}}, "did you mean 'fractal'?"),
    ({"featureClass": {"glcmm": None}}, "unknown feature class 'glcmm'; did you mean 'glcm'?"),
    ({"setting": {"binwidth": 5}}, "unknown setting key 'binwidth'; did you mean 'binWidth'?"),
    ({"setting": {"nonfinite": "drop"}}, "did you mean 'nonFinite'?"),
    ({"imageType": {"Elastcity": {}}}, "did you mean 'Elasticity'?"),
    ({"imageType": {"DEM": {"sigmaa": 1}}}, "unknown imageType DEM key 'sigmaa'; did you mean 'sigma'?"),
    ({"featureClass": {"firstorder": ["Entropie"]}}, "unknown feature(s) ['Entropie']; did you mean 'Entropy'?"),
    ({"settings": {}}, "unknown section(s) ['settings']"),
    ({"setting": {"binWidth": -1}}, "binWidth=-1: expected a"),
])
def test_parameter_messages_name_the_key_and_suggest(params, expected):
    with pytest.raises(ValueError) as e:
        load_params(params)
    assert expected in str(e.value), str(e.value)


def test_unrelated_names_get_no_suggestion():
    with pytest.raises(ValueError) as e:
        load_params({"featureClass": {"xyz": None}})
    assert "did you mean" not in str(e.value) and "unknown feature class 'xyz'" in str(e.value)


def test_yaml_and_json_errors_point_at_file_and_line(tmp_path, capsys):
    y = tmp_path / "params.yaml"
    y.write_text("setting:\n  binWidth: 25\n  label: [1\nimageType:\n  Original: {}\n")
    with pytest.raises(ValueError) as e:
        load_params(y)
    msg = str(e.value)
    assert msg.startswith(f"parameter file {str(y)!r}, line ") and "invalid YAML" in msg
    assert "<unicode string>" not in msg and "line 3" in msg, msg   # where the unclosed list began
    j = tmp_path / "params.json"
    j.write_text('{\n  "setting": {"binWidth": 25,}\n}\n')
    with pytest.raises(ValueError, match=r"params.json', line 2, column \d+: invalid JSON"):
        load_params(j)
    ip, mp = _case(tmp_path)
    assert cli(["extract", str(ip), str(mp), "-p", str(y)]) == 2
    err = capsys.readouterr().err
    assert str(y) in err and "line" in err and "Traceback" not in err


def test_batch_csv_errors_name_row_and_column(tmp_path, capsys):
    ip, mp = _case(tmp_path)
    b = tmp_path / "batch.csv"
    pd.DataFrame({"ID": ["a", "b"], "Image": [str(ip), str(ip)], "Mask": [str(mp), ""]}).to_csv(b, index=False)
    assert cli(["extract", str(b), "-q"]) == 2
    err = capsys.readouterr().err
    assert f"batch file {str(b)!r}, line 3 (ID 'b'), column 'Mask': empty; expected a path" in err, err
    assert "DICOM" not in err
    pd.DataFrame({"ID": ["a"], "Image": [str(ip)], "Mask": [str(mp)], "Label": ["one"]}).to_csv(b, index=False)
    with pytest.raises(ValueError, match=r"line 2 \(ID 'a'\), column 'Label': 'one' is not an integer"):
        cohort.read_batch(b)
    pd.DataFrame({"ID": ["a"], "Image": [str(ip)], "Maks": [str(mp)]}).to_csv(b, index=False)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['Mask'\]; did you mean 'Maks'\?"):
        cohort.read_batch(b)


def _subparsers():
    import argparse

    from rlnfast.cli import build_parser

    parser = build_parser()
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)][0].choices


def test_every_option_help_shows_its_default():
    import argparse

    from rlnfast.cli import HelpFormatter

    checked = 0
    for name, p in _subparsers().items():
        flat = " ".join(p.format_help().split())
        fmt = HelpFormatter(p.prog)
        for a in p._actions:
            if (not a.option_strings or a.required or a.default is argparse.SUPPRESS
                    or isinstance(a, (argparse._StoreTrueAction, argparse._HelpAction))):
                continue
            if any(a in g._group_actions for g in p._mutually_exclusive_groups if g.required):
                continue
            text = " ".join((fmt._get_help_string(a) or "").split())
            assert "default" in text.lower(), f"rlnfast {name} {a.option_strings[-1]}: help shows no default: {text!r}"
            assert text in flat, f"rlnfast {name} {a.option_strings[-1]}: {text!r} not in --help"
            checked += 1
    assert checked > 30


def test_extract_and_maps_usage_lines_stay_apart():
    sub = _subparsers()
    text = sub["extract"].format_help()
    assert "\n  rlnfast extract BATCH.csv -p params.yaml -o features.csv" in text
    assert "\n  rlnfast extract IMAGE MASK [-p params.yaml]" in text
    assert text.startswith("usage: rlnfast extract BATCH.csv") and "\n       rlnfast extract IMAGE MASK" in text
    assert "BATCH.csv | IMAGE MASK" not in text
    maps = sub["maps"].format_help()
    assert "\n  rlnfast maps ct.nii.gz -o maps/" in maps and "\n  rlnfast maps ct.nii.gz -o case1" in maps


def test_wrong_number_of_extract_inputs(capsys):
    assert cli(["extract", "a.nii.gz", "b.nii.gz", "c.nii.gz"]) == 2
    assert "expected one batch CSV (BATCH.csv) or two files (IMAGE MASK), got 3" in capsys.readouterr().err
