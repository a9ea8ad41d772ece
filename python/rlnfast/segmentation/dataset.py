"""nnU-Net v2 raw dataset writing: CT + node masks -> ``DatasetXXX_Name/imagesTr``, ``labelsTr`` and
``dataset.json``, which ``nnUNetv2_plan_and_preprocess`` and ``nnUNetv2_train`` take unchanged."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..io import read_volume, write_volume
from .files import _check_case_id, _header, _isnan, _must_exist, _read_table, check_same_geometry
from .nodes import _as_label_array


def nnunet_dataset(batch, dataset_id: int = 501, name: str = "RLNNodes", out_raw_dir=".", label_names=None, *,
                   overwrite: bool = False, geometry_tolerance=None) -> Path:
    """Write an nnU-Net v2 raw dataset from CT + node masks; returns the ``DatasetXXX_Name`` folder.

    Parameters
    ----------
    batch
        CSV path or DataFrame with columns ``ID, Image, Mask`` (pyradiomics batch convention; relative paths
        are resolved against the CSV's folder) and optionally ``Label`` (only that mask value is the node
        label of that case).
    dataset_id, name
        The folder is ``<out_raw_dir>/Dataset{dataset_id:03d}_{name}`` (id 1..999, name letters/digits/_-).
    label_names
        None: binary training data, every positive mask voxel becomes label 1 ``node`` (node maps with
        labels 1..K, one per node, are merged). Or a dict ``{"background": 0, "node": 1, ...}`` (consecutive
        values from 0): masks are written as they are and must hold only those values.

    Writes ``imagesTr/<ID>_0000.nii.gz`` (the CT, voxel values and geometry unchanged), ``labelsTr/<ID>.nii.gz``
    (uint8, on the CT's exact grid after checking that the mask's grid matches within the tolerance) and
    ``dataset.json`` (``channel_names {"0": "CT"}``, ``labels``, ``numTraining``, ``file_ending ".nii.gz"``),
    which ``nnUNetv2_plan_and_preprocess -d ID`` and ``nnUNetv2_train`` read unchanged.
    """
    import SimpleITK as sitk

    df, src = _read_table(batch, "batch CSV")
    did = int(dataset_id)
    if not 1 <= did <= 999:
        raise ValueError(f"dataset id {dataset_id!r}: expected 1..999 (nnU-Net's three-digit DatasetXXX)")
    if not re.match(r"^[A-Za-z0-9_-]+$", str(name)):
        raise ValueError(f"dataset name {name!r}: expected letters, digits, '_' or '-'")
    if label_names is None:
        labels = {"background": 0, "node": 1}
        binary = True
    else:
        labels = {str(k): int(v) for k, v in dict(label_names).items()}
        vals = sorted(labels.values())
        if vals != list(range(len(vals))) or len(vals) < 2:
            raise ValueError(f"label_names {labels}: expected consecutive values 0..N with background 0")
        binary = False
    allowed = np.asarray(sorted(labels.values()))
    root = Path(out_raw_dir) / f"Dataset{did:03d}_{name}"
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise ValueError(f"nnU-Net dataset folder {str(root)!r} exists and is not empty "
                         "(overwrite=True, or --overwrite, writes into it)")
    # check every case (files exist, grids agree; headers only) before writing anything
    for r in df.itertuples():
        case = _check_case_id(str(r.ID), src)
        g_img = _header(_must_exist(r.Image, f"{src}: image of case {case!r}"))
        g_msk = _header(_must_exist(r.Mask, f"{src}: mask of case {case!r}"))
        check_same_geometry(g_msk, f"mask {str(r.Mask)!r}", g_img, f"image {str(r.Image)!r}", geometry_tolerance)
        if not binary and not ("Label" in df.columns and not _isnan(getattr(r, "Label"))):
            arr = _as_label_array(read_volume(r.Mask).array, f"mask {str(r.Mask)!r}")
            bad = np.setdiff1d(np.unique(arr), allowed)
            if len(bad):
                raise ValueError(f"mask {str(r.Mask)!r} of case {case!r} holds label value(s) "
                                 f"{bad[:10].tolist()} not in label_names {labels}")
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    for r in df.itertuples():
        case = str(r.ID)
        img = sitk.ReadImage(str(r.Image))
        msk = read_volume(r.Mask, name=f"mask {r.Mask!r}")
        arr = _as_label_array(msk.array, f"mask {str(r.Mask)!r}")
        if "Label" in df.columns and not _isnan(getattr(r, "Label")):
            arr = (arr == int(getattr(r, "Label"))).astype(np.uint8)
        elif binary:
            arr = (arr > 0).astype(np.uint8)
        else:
            arr = arr.astype(np.uint8 if allowed.max() < 256 else np.uint16)
        lab = sitk.GetImageFromArray(arr)
        lab.CopyInformation(img)
        write_volume(img, root / "imagesTr" / f"{case}_0000.nii.gz")
        write_volume(lab, root / "labelsTr" / f"{case}.nii.gz")
    ds = {"name": str(name), "description": "rlnfast nnunet-dataset: CT and lymph node masks",
          "channel_names": {"0": "CT"}, "labels": labels, "numTraining": int(len(df)), "file_ending": ".nii.gz"}
    (root / "dataset.json").write_text(json.dumps(ds, indent=2))
    return root
