"""Segmentation front end: nodes (vs scipy.ndimage.label), Dice/HD95 (vs an independent brute-force
reference), the nnU-Net dataset writer, importing predictions, and the errors for bad input."""
from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial.distance import cdist

from rlnfast import segmentation as seg
from rlnfast.cli import main as cli_main

SHAPE = (14, 17, 19)


def _rotation(a, b, c):
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    rz = np.array([[ca, -sa, 0], [sa, ca, 0], [0, 0, 1]])
    ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    rx = np.array([[1, 0, 0], [0, cc, -sc], [0, sc, cc]])
    return rz @ ry @ rx


def _blobs(rng, shape=SHAPE, thr=0.58, sigma=1.2):
    return ndimage.gaussian_filter(rng.random(shape), sigma) > thr - 0.08 * rng.random()


def _write(arr, path, spacing=(0.7, 0.9, 2.5), origin=(0.0, 0.0, 0.0), direction=None):
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(direction)
    sitk.WriteImage(img, str(path))
    return path


# ---------------------------------------------------------------------------------------------- nodes

@pytest.mark.parametrize("connectivity", [6, 26])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_nodes_equals_scipy_label(connectivity, seed):
    rng = np.random.default_rng(seed)
    lm = rng.integers(0, 3, SHAPE).astype(np.int16) * (rng.random(SHAPE) < 0.55)
    spacing = (0.7, 0.9, 2.5)
    origin = tuple(rng.normal(0, 50, 3))
    d = _rotation(*rng.uniform(-0.5, 0.5, 3))
    node_map, table = seg.split_nodes(lm, spacing, label=2, connectivity=connectivity, origin=origin,
                                      direction=tuple(d.ravel()))
    structure = ndimage.generate_binary_structure(3, 1 if connectivity == 6 else 3)
    ref, n = ndimage.label(lm == 2, structure=structure)
    assert node_map.dtype == np.int32
    np.testing.assert_array_equal(node_map, ref)
    assert len(table) == n and n > 5
    np.testing.assert_array_equal(table["node"], np.arange(1, n + 1))
    np.testing.assert_array_equal(table["voxels"], np.bincount(ref.ravel())[1:])
    np.testing.assert_allclose(table["volume_mm3"], table["voxels"] * 0.7 * 0.9 * 2.5)
    assert (table["source_label"] == 2).all()
    com = np.array(ndimage.center_of_mass(np.ones(SHAPE), ref, np.arange(1, n + 1)))  # (z, y, x)
    idx = np.stack([table.centroid_index_x, table.centroid_index_y, table.centroid_index_z], 1)
    np.testing.assert_allclose(idx, com[:, ::-1], atol=1e-9)
    # physical point = origin + D @ (index * spacing), written out independently of SimpleITK
    phys = np.asarray(origin) + (idx * np.asarray(spacing)) @ d.T
    got = np.stack([table.centroid_x_mm, table.centroid_y_mm, table.centroid_z_mm], 1)
    np.testing.assert_allclose(got, phys, atol=1e-6)


@pytest.mark.parametrize("connectivity", [6, 26])
def test_split_nodes_min_volume_drops_specks_and_renumbers(connectivity):
    rng = np.random.default_rng(7)
    fg = rng.random(SHAPE) < 0.3
    spacing = (0.5, 0.5, 2.0)  # 0.5 mm^3 per voxel
    structure = ndimage.generate_binary_structure(3, 1 if connectivity == 6 else 3)
    ref, n = ndimage.label(fg, structure=structure)
    counts = np.bincount(ref.ravel())[1:]
    min_vol = 2.0  # = 4 voxels
    keep = np.nonzero(counts * 0.5 >= min_vol)[0] + 1
    assert 0 < len(keep) < n
    lut = np.zeros(n + 1, np.int32)
    lut[keep] = np.arange(1, len(keep) + 1)
    node_map, table = seg.split_nodes(fg, spacing, label=1, connectivity=connectivity, min_volume_mm3=min_vol)
    np.testing.assert_array_equal(node_map, lut[ref])
    np.testing.assert_array_equal(table["component"], keep)
    assert (table["volume_mm3"] >= min_vol).all()


def test_split_nodes_label_mode_and_any_label():
    lm = np.zeros((5, 6, 7), np.uint16)
    lm[0, 0, 0:2] = 7
    lm[4, 5, 6] = 3
    lm[2, 2, 2] = 3  # label 3: two separate pieces, still one node in "labels" mode
    node_map, table = seg.split_nodes(lm, mode="labels")
    assert table["source_label"].tolist() == [3, 7]
    np.testing.assert_array_equal(node_map, np.where(lm == 3, 1, np.where(lm == 7, 2, 0)))
    assert table["voxels"].tolist() == [2, 2]
    node_map, table = seg.split_nodes(lm, label=None)  # components of any positive label
    assert len(table) == 3 and sorted(table["source_label"]) == [3, 3, 7]


def test_split_nodes_empty_mask_is_zero_nodes():
    node_map, table = seg.split_nodes(np.zeros(SHAPE, np.uint8), (1, 1, 1))
    assert not node_map.any() and len(table) == 0
    assert list(table.columns) == seg.NODE_TABLE_COLUMNS


def test_split_nodes_errors():
    with pytest.raises(ValueError, match="connectivity=18"):
        seg.split_nodes(np.ones((2, 2, 2), np.uint8), connectivity=18)
    with pytest.raises(ValueError, match="integer label map"):
        seg.split_nodes(np.full((2, 2, 2), 0.5))
    with pytest.raises(ValueError, match="spacing"):
        seg.split_nodes(np.ones((2, 2, 2), np.uint8), (1, 0, 1))


# ---------------------------------------------------------------------------------------------- Dice, HD95

def _ref_surface(m):
    """Surface voxels: in the mask with at least one of the 6 face neighbours outside (or off the volume)."""
    p = np.pad(m, 1, constant_values=False)
    inner = np.ones_like(m)
    for ax in range(3):
        for sh in (-1, 1):
            inner &= np.roll(p, sh, axis=ax)[1:-1, 1:-1, 1:-1]
    return m & ~inner


def _ref_hd95(a, b, spacing_zyx):
    pa = np.argwhere(_ref_surface(a)) * np.asarray(spacing_zyx)
    pb = np.argwhere(_ref_surface(b)) * np.asarray(spacing_zyx)
    d = cdist(pa, pb)
    return np.percentile(np.concatenate([d.min(axis=1), d.min(axis=0)]), 95)


@pytest.mark.parametrize("seed", range(6))
def test_dice_and_hd95_equal_reference(seed):
    rng = np.random.default_rng(seed)
    if seed % 2:
        a, b = _blobs(rng), _blobs(rng)
    else:  # prediction = truth with random flips near the border, and a speck far away
        a = _blobs(rng)
        b = a ^ (ndimage.binary_dilation(a) & (rng.random(SHAPE) < 0.3))
        b[0, 0, 0] = True
    spacing_xyz = (0.7, 0.9, 2.5)
    spacing_zyx = spacing_xyz[::-1]
    ref_dice = 2.0 * np.sum(a & b) / (np.sum(a) + np.sum(b))
    assert seg.dice(a, b, backend="cpu") == pytest.approx(ref_dice, rel=1e-12)
    assert seg.hd95(a, b, spacing_zyx, backend="cpu") == pytest.approx(_ref_hd95(a, b, spacing_zyx), rel=1e-9)
    row = seg.evaluate_case(a.astype(np.uint8), b.astype(np.uint8), spacing_xyz, backend="cpu")
    assert row["dice"] == pytest.approx(ref_dice, rel=1e-12)
    assert row["hd95_mm"] == pytest.approx(_ref_hd95(a, b, spacing_zyx), rel=1e-9)
    vv = 0.7 * 0.9 * 2.5
    assert row["volume_diff_mm3"] == pytest.approx((a.sum() - b.sum()) * vv)


def test_hd95_touching_volume_edge_and_crop():
    # masks touching the volume's edge: outside the volume counts as background (surface there)
    a = np.zeros((6, 8, 9), bool)
    b = np.zeros_like(a)
    a[:, :4, :] = True
    b[:, :6, 2:] = True
    sp = (2.0, 0.5, 0.8)
    assert seg.hd95(a, b, sp, backend="cpu") == pytest.approx(_ref_hd95(a, b, sp), rel=1e-9)


def test_dice_hd95_empty_cases():
    z = np.zeros(SHAPE, bool)
    one = z.copy()
    one[3, 3, 3] = True
    assert np.isnan(seg.dice(z, z, backend="cpu"))
    assert seg.dice(z, one, backend="cpu") == 0.0
    assert np.isnan(seg.hd95(z, one, (1, 1, 1)))
    row = seg.evaluate_case(z.astype(np.uint8), one.astype(np.uint8), backend="cpu")
    assert "empty prediction" in row["note"] and row["missed"] == 1 and row["pred_nodes"] == 0


def test_node_detection_counts():
    gt = np.zeros((10, 30, 30), np.uint8)
    pred = np.zeros_like(gt)
    gt[2:5, 2:6, 2:6] = 1      # matched
    gt[2:5, 20:25, 2:6] = 1    # matched (partly)
    gt[2:5, 2:6, 20:25] = 1    # missed
    pred[2:5, 2:6, 2:6] = 1
    pred[3:4, 22:27, 4:8] = 1
    pred[7:9, 20:25, 20:25] = 1  # false positive
    pred[8, 2, 2] = 1            # false positive speck
    d = seg.node_detection(pred, gt)
    assert d == {"gt_nodes": 3, "pred_nodes": 4, "matched": 2, "missed": 1, "false_positive": 2}


def test_seg_eval_cohort_mean_sd_and_files(tmp_path):
    rng = np.random.default_rng(11)
    (tmp_path / "pred").mkdir()
    (tmp_path / "gt").mkdir()
    dices = []
    for i in range(4):
        g = _blobs(rng)
        p = g ^ (ndimage.binary_dilation(g) & (rng.random(SHAPE) < 0.2 + 0.1 * i))
        dices.append(2.0 * np.sum(p & g) / (p.sum() + g.sum()))
        _write(p.astype(np.uint8), tmp_path / "pred" / f"c{i}.nii.gz")
        _write(g.astype(np.uint8), tmp_path / "gt" / f"c{i}.nii.gz")
    _write(np.zeros(SHAPE, np.uint8), tmp_path / "gt" / "unpredicted.nii.gz")
    res = seg.seg_eval(tmp_path / "pred", tmp_path / "gt", backend="cpu")
    assert res.cases["case"].tolist() == ["c0", "c1", "c2", "c3"]
    np.testing.assert_allclose(res.cases["dice"], dices, rtol=1e-12)
    s = res.summary.set_index("metric")
    assert s.loc["dice", "mean"] == pytest.approx(np.mean(dices))
    assert s.loc["dice", "sd"] == pytest.approx(np.std(dices, ddof=1))
    assert f"Dice {np.mean(dices):.3f} ± {np.std(dices, ddof=1):.3f} (n=4)" in res.text
    assert "1 truth file(s) without a prediction" in res.text
    rc = cli_main(["seg-eval", str(tmp_path / "pred"), str(tmp_path / "gt"), "-o", str(tmp_path / "qc"),
                   "--backend", "cpu"])
    assert rc == 0
    cases = pd.read_csv(tmp_path / "qc" / "seg_eval_cases.csv")
    np.testing.assert_allclose(cases["dice"], dices, rtol=1e-12)
    assert "Dice" in (tmp_path / "qc" / "seg_eval.txt").read_text()


def test_seg_eval_errors(tmp_path, capsys):
    a = np.ones((4, 5, 6), np.uint8)
    _write(a, tmp_path / "p.nii.gz", spacing=(1.0, 1.0, 1.0))
    _write(a, tmp_path / "g.nii.gz", spacing=(1.0, 1.0, 3.0))
    with pytest.raises(ValueError) as e:
        seg.seg_eval(tmp_path / "p.nii.gz", tmp_path / "g.nii.gz")
    assert "spacing (1, 1, 1)" in str(e.value) and "spacing (1, 1, 3)" in str(e.value)
    (tmp_path / "pd").mkdir()
    (tmp_path / "gd").mkdir()
    _write(a, tmp_path / "pd" / "x.nii.gz")
    assert cli_main(["seg-eval", str(tmp_path / "pd"), str(tmp_path / "gd")]) == 2
    assert "has no truth" in capsys.readouterr().err


def test_shrink_plans_gives_a_valid_tiny_unet():
    plans = {"configurations": {
        "2d": {}, "3d_lowres": {},
        "3d_fullres": {"patch_size": [80, 160, 160], "batch_size": 2, "architecture": {"arch_kwargs": {
            "n_stages": 6, "features_per_stage": [32, 64, 128, 256, 320, 320], "kernel_sizes": [[1, 3, 3]] * 6,
            "strides": [[1, 1, 1]] + [[2, 2, 2]] * 5, "n_conv_per_stage": [2] * 6,
            "n_conv_per_stage_decoder": [2] * 5}}}}}
    out = seg._shrink_plans(plans, {"patch_size": [8, 32, 32], "batch_size": 2, "features": [8, 16, 32]})
    assert list(out["configurations"]) == ["3d_fullres"]
    c = out["configurations"]["3d_fullres"]
    a = c["architecture"]["arch_kwargs"]
    assert c["patch_size"] == [8, 32, 32] and a["n_stages"] == 3 and a["features_per_stage"] == [8, 16, 32]
    assert a["strides"] == [[1, 1, 1], [2, 2, 2], [1, 2, 2]]  # z stops halving below 8 voxels
    assert len(a["kernel_sizes"]) == 3 and a["n_conv_per_stage"] == [1, 1, 1]
    assert a["n_conv_per_stage_decoder"] == [1, 1]
    # the patch divides evenly by the total downsampling on every axis
    total = np.prod(np.asarray(a["strides"]), axis=0)
    assert all(p % t == 0 for p, t in zip(c["patch_size"], total))


# ---------------------------------------------------------------------------------------------- dataset writer

@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    d = tmp_path_factory.mktemp("cases")
    return seg.synthetic_node_cases(d, n_cases=4, seed=3, shape=(12, 24, 24)), d


def test_synthetic_cases_are_seeded(cases, tmp_path):
    df, _ = cases
    again = seg.synthetic_node_cases(tmp_path, n_cases=4, seed=3, shape=(12, 24, 24))
    assert df["n_nodes"].tolist() == again["n_nodes"].tolist()
    for a, b in zip(df.Mask, again.Mask):
        np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(a)), sitk.GetArrayFromImage(sitk.ReadImage(b)))
    m = sitk.GetArrayFromImage(sitk.ReadImage(df.Mask[0]))
    assert m.max() == df.n_nodes[0]


def test_nnunet_dataset_layout(cases, tmp_path):
    df, d = cases
    csv = d / "batch.csv"
    rc = cli_main(["nnunet-dataset", str(csv), "--id", "7", "--name", "Nodes", "-o", str(tmp_path / "raw")])
    assert rc == 0
    root = tmp_path / "raw" / "Dataset007_Nodes"
    ds = json.loads((root / "dataset.json").read_text())
    assert ds["channel_names"] == {"0": "CT"}
    assert ds["labels"] == {"background": 0, "node": 1}
    assert ds["numTraining"] == len(df) and ds["file_ending"] == ".nii.gz"
    assert sorted(p.name for p in (root / "imagesTr").iterdir()) == [f"{c}_0000.nii.gz" for c in df.ID]
    assert sorted(p.name for p in (root / "labelsTr").iterdir()) == [f"{c}.nii.gz" for c in df.ID]
    for r in df.itertuples():
        ct0, ct1 = sitk.ReadImage(r.Image), sitk.ReadImage(str(root / "imagesTr" / f"{r.ID}_0000.nii.gz"))
        lab = sitk.ReadImage(str(root / "labelsTr" / f"{r.ID}.nii.gz"))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(ct0), sitk.GetArrayFromImage(ct1))
        for img in (ct1, lab):
            assert img.GetSpacing() == ct0.GetSpacing() and img.GetOrigin() == ct0.GetOrigin()
            assert img.GetDirection() == ct0.GetDirection()
        m = sitk.GetArrayFromImage(sitk.ReadImage(r.Mask))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(lab), (m > 0).astype(np.uint8))
        assert lab.GetPixelID() == sitk.sitkUInt8
    # a second write into the same folder is refused, --overwrite allows it
    with pytest.raises(ValueError, match="exists and is not empty"):
        seg.nnunet_dataset(csv, 7, "Nodes", tmp_path / "raw")
    seg.nnunet_dataset(csv, 7, "Nodes", tmp_path / "raw", overwrite=True)


def test_nnunet_dataset_errors(cases, tmp_path):
    df, d = cases
    bad = df.copy()
    m = sitk.ReadImage(df.Mask[1])
    m.SetOrigin((1.0, 2.0, 3.0))
    sitk.WriteImage(m, str(tmp_path / "shifted.nii.gz"))
    bad.loc[1, "Mask"] = str(tmp_path / "shifted.nii.gz")
    with pytest.raises(ValueError) as e:
        seg.nnunet_dataset(bad, 8, "Bad", tmp_path / "raw")
    msg = str(e.value)
    assert "shifted.nii.gz" in msg and "origin (1, 2, 3)" in msg and "origin (-20, 15, 105)" in msg
    assert not (tmp_path / "raw" / "Dataset008_Bad").exists()  # nothing written before the check
    with pytest.raises(ValueError, match="missing column"):
        seg.nnunet_dataset(df.drop(columns=["Mask"]), 8, "Bad", tmp_path / "raw")
    with pytest.raises(ValueError, match="1..999"):
        seg.nnunet_dataset(df, 1000, "Bad", tmp_path / "raw")
    with pytest.raises(ValueError, match="not in label_names"):
        seg.nnunet_dataset(df, 9, "Multi", tmp_path / "raw", label_names={"background": 0, "node": 1})
    multi = seg.nnunet_dataset(df, 10, "Multi", tmp_path / "raw",
                               label_names={"background": 0, **{f"node{i}": i for i in range(1, 5)}})
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(multi / "labelsTr" / f"{df.ID[0]}.nii.gz")))
    np.testing.assert_array_equal(lab, sitk.GetArrayFromImage(sitk.ReadImage(df.Mask[0])))


# ---------------------------------------------------------------------------------------------- predictions

def _prediction_folder(tmp_path, n=3, seed=5, with_json=True, label=1):
    rng = np.random.default_rng(seed)
    ct, pred = tmp_path / "ct", tmp_path / "pred"
    ct.mkdir()
    pred.mkdir()
    geo = dict(spacing=(0.7, 0.9, 2.5), origin=(10.0, -5.0, 30.0))
    masks = {}
    for i in range(n):
        case = f"pt{i}"
        _write(rng.normal(0, 50, SHAPE).astype(np.int16), ct / f"{case}_0000.nii.gz", **geo)
        m = (_blobs(rng) * label).astype(np.uint8) if i < n - 1 else np.zeros(SHAPE, np.uint8)  # last: empty
        _write(m, pred / f"{case}.nii.gz", **geo)
        masks[case] = m
    if with_json:
        (pred / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "node": label},
                                                       "channel_names": {"0": "CT"}, "file_ending": ".nii.gz"}))
    return ct, pred, masks


def test_import_predictions_folder(tmp_path):
    ct, pred, masks = _prediction_folder(tmp_path, label=2)
    batch, nodes = seg.import_predictions(pred, ct, tmp_path / "out", connectivity=6)
    assert list(batch.columns[:3]) == ["ID", "Image", "Mask"]
    assert batch["ID"].tolist() == ["pt0", "pt1", "pt2"]
    assert batch["n_nodes"].iloc[-1] == 0  # the empty prediction: zero nodes, not an error
    for r in batch.itertuples():
        ref, n = ndimage.label(masks[r.ID] == 2, structure=ndimage.generate_binary_structure(3, 1))
        nm = sitk.ReadImage(r.Mask)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(nm), ref)
        assert r.n_nodes == n == (nodes.ID == r.ID).sum()
        ctimg = sitk.ReadImage(r.Image)
        assert nm.GetOrigin() == ctimg.GetOrigin() and nm.GetSpacing() == ctimg.GetSpacing()
        assert r.Mask.endswith(f"nodes/{r.ID}_nodes.nii.gz")
    assert (tmp_path / "out" / "batch.csv").is_file() and (tmp_path / "out" / "nodes.csv").is_file()
    # the written batch is what `rlnfast extract` runs: one row per node, the node table's voxel counts
    feats, skipped = seg.extract_nodes(tmp_path / "out" / "batch.csv", backend="cpu", nodes=nodes)
    assert list(skipped) == ["pt2"] and "zero nodes" in skipped["pt2"]
    assert len(feats) == len(nodes)
    np.testing.assert_array_equal(feats["diagnostics_Mask-original_VoxelNum"], nodes["voxels"])
    np.testing.assert_allclose(feats["volume_mm3"], nodes["volume_mm3"])
    # the cohort runner gives the same table
    f2, s2 = seg.extract_nodes(batch, backend="cpu", nodes=nodes, out_dir=tmp_path / "cohort")
    assert s2 == skipped and f2["ID"].tolist() == feats["ID"].tolist()
    cols = [c for c in feats.columns if "_firstorder_" in c]
    np.testing.assert_allclose(f2[cols].to_numpy(float), feats[cols].to_numpy(float), rtol=1e-12)
    assert f2["Image"].tolist() == feats["Image"].tolist()


def test_import_predictions_label_by_name_and_csv(tmp_path):
    ct, pred, masks = _prediction_folder(tmp_path, label=1)
    batch, nodes = seg.import_predictions(pred, ct, tmp_path / "o1", label="node", min_volume_mm3=5.0)
    assert (nodes["volume_mm3"] >= 5.0).all()
    with pytest.raises(ValueError, match="label name 'tumour'"):
        seg.import_predictions(pred, ct, tmp_path / "o2", label="tumour")
    csv = tmp_path / "cohort.csv"
    pd.DataFrame({"ID": ["a", "b"], "Image": ["ct/pt0_0000.nii.gz", "ct/pt1_0000.nii.gz"],
                  "Mask": ["pred/pt0.nii.gz", "pred/pt1.nii.gz"]}).to_csv(csv, index=False)  # relative to CSV
    b2, n2 = seg.import_predictions(csv, out_dir=tmp_path / "o3")
    assert b2["ID"].tolist() == ["a", "b"]
    ref0 = ndimage.label(masks["pt0"] > 0, structure=np.ones((3, 3, 3)))[1]
    assert b2["n_nodes"].iloc[0] == ref0


def test_import_predictions_errors(tmp_path):
    ct, pred, _ = _prediction_folder(tmp_path)
    (ct / "pt1_0000.nii.gz").unlink()
    with pytest.raises(ValueError) as e:
        seg.import_predictions(pred, ct, tmp_path / "out")
    assert "pt1.nii.gz" in str(e.value) and "pt1_0000.nii.gz" in str(e.value) and "no matching CT" in str(e.value)
    # geometry mismatch: both geometries named
    _write(np.zeros(SHAPE, np.int16), ct / "pt1_0000.nii.gz", spacing=(0.7, 0.9, 5.0), origin=(10.0, -5.0, 30.0))
    with pytest.raises(ValueError) as e:
        seg.import_predictions(pred, ct, tmp_path / "out")
    msg = str(e.value)
    assert "spacing (0.7, 0.9, 2.5)" in msg and "spacing (0.7, 0.9, 5)" in msg and "pt1" in msg
    _write(np.zeros((3, 4, 5), np.int16), ct / "pt1_0000.nii.gz", spacing=(0.7, 0.9, 2.5), origin=(10.0, -5.0, 30.0))
    with pytest.raises(ValueError, match=r"size \(5, 4, 3\)"):
        seg.import_predictions(pred, ct, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="prediction folder"):
        seg.import_predictions(tmp_path / "nope", ct)


def test_segment_command_imports_predictions(tmp_path, capsys):
    ct, pred, _ = _prediction_folder(tmp_path)
    rc = cli_main(["segment", "--predictions", str(pred), "--input", str(ct), "-o", str(tmp_path / "out"),
                   "--extract", "--backend", "cpu"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "pt2: 0 node(s)  (empty prediction: zero nodes)" in out
    feats = pd.read_csv(tmp_path / "out" / "features.csv")
    nodes = pd.read_csv(tmp_path / "out" / "nodes.csv")
    assert len(feats) == len(nodes) > 0
    assert "original_firstorder_Mean" in feats.columns


# ---------------------------------------------------------------------------------------------- inference errors

def _fake_model(tmp_path, checkpoint=True):
    m = tmp_path / "model"
    (m / "fold_0").mkdir(parents=True)
    (m / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": {"background": 0, "node": 1},
                                                "file_ending": ".nii.gz"}))
    (m / "plans.json").write_text("{}")
    if checkpoint:
        (m / "fold_0" / "checkpoint_final.pth").write_bytes(b"")
    else:
        (m / "fold_0" / "checkpoint_best.pth").write_bytes(b"")
    return m


def test_segment_model_without_checkpoint(tmp_path, capsys):
    m = _fake_model(tmp_path, checkpoint=False)
    ct, _, _ = _prediction_folder(tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        seg.segment(m, ct, tmp_path / "out")
    assert "fold_0/checkpoint_final.pth" in str(e.value) and "fold_0/checkpoint_best.pth" in str(e.value)
    rc = cli_main(["segment", "--model", str(m), "--input", str(ct), "-o", str(tmp_path / "out")])
    assert rc == 2 and "no checkpoint" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="fold_1"):
        seg.segment(m, ct, tmp_path / "out", folds=(1,), checkpoint="checkpoint_best.pth")


def test_segment_without_nnunet_says_how_to_install(tmp_path, monkeypatch, capsys):
    m = _fake_model(tmp_path)
    ct, _, _ = _prediction_folder(tmp_path)
    monkeypatch.setitem(sys.modules, "nnunetv2", None)  # import nnunetv2 -> ImportError
    with pytest.raises(ImportError, match=r'pip install "rlnfast\[seg\]"'):
        seg.segment(m, ct, tmp_path / "out")
    rc = cli_main(["segment", "--model", str(m), "--input", str(ct), "-o", str(tmp_path / "out")])
    assert rc == 2 and "pip install torch nnunetv2" in capsys.readouterr().err


def test_segment_input_errors(tmp_path):
    m = _fake_model(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no <case>_0000.nii.gz"):
        seg.segment(m, tmp_path / "empty", tmp_path / "out")
    csv = tmp_path / "in.csv"
    pd.DataFrame({"ID": ["a"], "Image": ["missing.nii.gz"]}).to_csv(csv, index=False)
    with pytest.raises(FileNotFoundError, match="missing.nii.gz"):
        seg.segment(m, csv, tmp_path / "out")
    with pytest.raises(ValueError, match="device='tpu'"):
        seg.segment(m, csv, tmp_path / "out", device="tpu")
