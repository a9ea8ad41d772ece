"""End to end with a real nnU-Net v2: synthetic CT -> `rlnfast nnunet-dataset` -> nnU-Net's own planning,
preprocessing and training of a tiny model on the CPU -> `rlnfast segment` on held-out cases ->
`rlnfast seg-eval` against their truth, and the node features equal `rlnfast.extract` on the predictions.

Needs the optional extra (pip install "rlnfast[seg]"); about a minute on 2 CPU cores.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from rlnfast import segmentation as seg
from rlnfast.cli import main as cli_main

from conftest import require_seg

pytestmark = [pytest.mark.seg]


@pytest.fixture(autouse=True)
def _needs_seg():
    """torch and nnunetv2 absent: skip saying how to install them; a failure under CI=true."""
    require_seg()


PYTHON_DIR = str(Path(seg.__file__).resolve().parents[2])  # the folder holding rlnfast/


def _rlnfast(*args, timeout=300):
    """Run the real command line in a fresh process (nnU-Net's env vars stay out of the test process)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = PYTHON_DIR + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        env.pop(k, None)
    p = subprocess.run([sys.executable, "-m", "rlnfast", *map(str, args)], env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, f"rlnfast {args[0]} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p.stdout


def test_tiny_nnunet_train_segment_evaluate_extract(tmp_path):
    t0 = time.perf_counter()
    data = seg.synthetic_node_cases(tmp_path / "data", n_cases=10, seed=0)
    train, held = data.iloc[:8], data.iloc[8:]
    train.to_csv(tmp_path / "train.csv", index=False)
    assert cli_main(["nnunet-dataset", str(tmp_path / "train.csv"), "--id", "501", "--name", "RLNNodes",
                     "-o", str(tmp_path / "raw")]) == 0

    model = seg.train_tiny_model(tmp_path / "raw" / "Dataset501_RLNNodes", tmp_path / "work", epochs=5, seed=0)
    assert (model / "fold_0" / "checkpoint_final.pth").is_file()
    t_train = time.perf_counter() - t0

    # held-out cases in nnU-Net's naming, and the same cases given as a CSV
    (tmp_path / "ct").mkdir()
    for r in held.itertuples():
        os.symlink(r.Image, tmp_path / "ct" / f"{r.ID}_0000.nii.gz")
    held[["ID", "Image"]].to_csv(tmp_path / "held.csv", index=False)

    out = _rlnfast("segment", "--model", model, "--input", tmp_path / "ct", "-o", tmp_path / "pred",
                   "--folds", "0", "--device", "cpu", "--checkpoint", "checkpoint_final.pth", "--extract")
    assert "features:" in out
    batch = pd.read_csv(tmp_path / "pred" / "batch.csv")
    assert batch["ID"].tolist() == held["ID"].tolist()
    for r in held.itertuples():
        ct, pr = sitk.ReadImage(r.Image), sitk.ReadImage(str(tmp_path / "pred" / f"{r.ID}.nii.gz"))
        assert (pr.GetSize(), pr.GetSpacing(), pr.GetOrigin(), pr.GetDirection()) == \
               (ct.GetSize(), ct.GetSpacing(), ct.GetOrigin(), ct.GetDirection())

    # quality control against the truth: nnU-Net learned the nodes
    (tmp_path / "truth").mkdir()
    for r in held.itertuples():
        os.symlink(r.Mask, tmp_path / "truth" / f"{r.ID}.nii.gz")
    assert cli_main(["seg-eval", str(tmp_path / "pred"), str(tmp_path / "truth"), "-o", str(tmp_path / "qc")]) == 0
    qc = pd.read_csv(tmp_path / "qc" / "seg_eval_cases.csv")
    assert qc["case"].tolist() == held["ID"].tolist()
    assert (qc["dice"] > 0.7).all(), qc
    assert (qc["matched"] >= 1).all(), qc

    # node features from `segment --extract` equal rlnfast.extract on the prediction files directly
    # (one region per 26-connected component of label 1)
    from rlnfast.extract import extract

    feats = pd.read_csv(tmp_path / "pred" / "features.csv")
    nodes = pd.read_csv(tmp_path / "pred" / "nodes.csv")
    assert len(feats) == len(nodes) == batch["n_nodes"].sum() > 0
    fcols = [c for c in feats.columns if "_firstorder_" in c]
    assert len(fcols) >= 10
    for r in held.itertuples():
        direct = extract(r.Image, str(tmp_path / "pred" / f"{r.ID}.nii.gz"), connectedComponents=True,
                         connectivity=26)
        mine = feats[feats.ID == r.ID].reset_index(drop=True)
        assert len(direct) == len(mine)
        np.testing.assert_array_equal(mine["label"], np.arange(1, len(direct) + 1))
        np.testing.assert_array_equal(mine["diagnostics_Mask-original_VoxelNum"],
                                      direct["diagnostics_Mask-original_VoxelNum"])
        np.testing.assert_allclose(mine[fcols].to_numpy(float), direct[fcols].to_numpy(float), rtol=1e-12, atol=0)

    # nnU-Net's predict_from_files with worker processes (file lists) gives the same prediction
    _rlnfast("segment", "--model", model, "--input", tmp_path / "held.csv", "-o", tmp_path / "pred_mp",
             "--processes", "1")
    for r in held.itertuples():
        a = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "pred" / f"{r.ID}.nii.gz")))
        b = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "pred_mp" / f"{r.ID}.nii.gz")))
        np.testing.assert_array_equal(a, b)
    print(f"tiny nnU-Net: data + training {t_train:.1f} s, total {time.perf_counter() - t0:.1f} s, "
          f"Dice {qc['dice'].round(3).tolist()}")
